/**
 * "Stays responsive at 100 members and 100,000 tasks": the real dashboard
 * page in headless Chromium against the real hub, fed 100 members with GPUs
 * and adverts (each naming 16 steal partners), a 100,000-task job whose
 * progress moves, 3,000 task runs a second with 2% failures, and the job's
 * failures panel open. Measured in the page for a few seconds; the bench
 * (`npm run bench -- dashboard`) measures longer and prints the figures.
 * A screenshot is kept in test-artifacts/dashboard-load.png.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import {
  FULL_LOAD,
  hasChromium,
  type LoadedDashboard,
  launchChromium,
  measureDashboard,
  startLoadedDashboard,
} from './dashboard-load.ts'
import { REPO } from './harness.ts'

if (!hasChromium)
  console.warn('dashboard load test skipped: /usr/bin/chromium is missing (.ci/run installs it)')

describe.skipIf(!hasChromium)('the dashboard at 100 members and 100,000 tasks', () => {
  let load: LoadedDashboard | undefined
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined

  afterAll(async () => {
    await browser?.close()
    await load?.stop()
  })

  it('keeps the page responsive, its DOM and events bounded, and shows the mesh-wide steals', async () => {
    load = await startLoadedDashboard(FULL_LOAD)
    browser = await launchChromium()
    let f = await measureDashboard(browser.page, load, 6)
    console.log('dashboard under load:', JSON.stringify(f))
    if (f.longestTaskMs >= 200 || f.p95FrameMs >= 100) {
      // On a shared CI machine a descheduled renderer looks like a long task: one more window.
      f = await measureDashboard(browser.page, load, 6)
      console.log('dashboard under load, second window:', JSON.stringify(f))
    }
    mkdirSync(join(REPO, 'test-artifacts'), { recursive: true })
    await browser.page.screenshot({
      path: join(REPO, 'test-artifacts', 'dashboard-load.png'),
      fullPage: true,
    })

    // Responsive: no main-thread task near a fifth of a second, frames on time.
    expect(f.longestTaskMs).toBeLessThan(200)
    expect(f.p95FrameMs).toBeLessThan(100)
    expect(f.frames).toBeGreaterThan(6 * 20)
    // Every tick arrived and was small enough to parse at once.
    expect(f.ticks).toBeGreaterThanOrEqual(5)
    expect(f.maxTickBytes).toBeLessThan(256 * 1024)
    expect(f.maxTickHandlerMs).toBeLessThan(100)
    // Bounded DOM: 100 members in a virtual list, the stream on a canvas.
    expect(f.memberCount).toBe(100)
    expect(f.memberRowsInDom).toBeLessThan(40)
    expect(f.domNodes).toBeLessThan(3000)
    // The stream holds thousands of runs on all 100 nodes; progress moved.
    expect(f.streamRuns).toBeGreaterThan(10_000)
    expect(f.streamNodes).toBe(100)
    expect(f.bigJobProgress).toBeGreaterThan(20)
    // Who steals from whom across the mesh: edges between members other than this node.
    const edges = await browser.page
      .locator('[data-testid=flow-edge]')
      .evaluateAll((els) => els.map((e) => [e.getAttribute('data-from'), e.getAttribute('data-to')]))
    expect(edges.length).toBeGreaterThan(50)
    expect(edges.length).toBeLessThanOrEqual(100)
    const self = load.self
    expect(edges.some(([from, to]) => from !== self && to !== self)).toBe(true)
    // The failures panel of the big job lists its failed tasks (virtually).
    const failures = Number(
      await browser.page.locator('[data-testid=failures]').getAttribute('data-rows', { timeout: 10_000 }),
    )
    expect(failures).toBeGreaterThan(0)
    // A thousand long stack traces come as a line each.
    expect(f.failuresBytes).toBeGreaterThan(0)
    expect(f.failuresBytes).toBeLessThan(512 * 1024)
    expect(await browser.page.locator('[data-testid=failures] .failure').count()).toBeLessThan(30)
  }, 120_000)
})
