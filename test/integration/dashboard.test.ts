/**
 * The dashboard in a real browser (Debian's Chromium driven by playwright-core)
 * against a live three-node mesh: the login address from `gridnode dashboard`
 * works once and leaves no code in the page's address; all three members
 * appear; a job's progress reaches 100% and its task stream shows more than
 * one node; a clicked failed task shows its story; cancel works from the page.
 * A screenshot is kept in test-artifacts/dashboard.png.
 *
 * Needs /usr/bin/chromium (.ci/run installs Debian's package); skipped with a
 * message when it is missing.
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import type { Page } from 'playwright-core'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Grid } from '../../src/client/index.ts'
import { CHROMIUM, hasChromium, launchChromium } from './dashboard-load.ts'
import { eventually, REPO, TestMesh, type TestNode } from './harness.ts'

const WORK = new URL('./fixtures/work.ts', import.meta.url)
const ARTIFACTS = join(REPO, 'test-artifacts')
if (!hasChromium)
  console.warn(
    `dashboard browser test skipped: ${CHROMIUM} is missing (apt-get install -y chromium; .ci/run does)`,
  )

describe.skipIf(!hasChromium)('the dashboard in Chromium on a three-node mesh', () => {
  const mesh = new TestMesh('dashboard')
  let owner: TestNode
  let nodes: TestNode[]
  let rest: TestNode[]
  let grid: Grid
  let page: Page
  let browser: Awaited<ReturnType<typeof launchChromium>> | undefined

  beforeAll(async () => {
    owner = await mesh.add('owner', { cpus: 1 })
    rest = await Promise.all(['b', 'c'].map((n) => mesh.add(n, { cpus: 2, bootstrap: [owner.addr] })))
    nodes = [owner, ...rest]
    for (const n of nodes) {
      await eventually(
        `${n.name} to see 2 members`,
        async () => (await n.api<unknown[]>('/v1/peers')).length >= 2,
        20_000,
      )
    }
    grid = await connect({ dataDir: owner.dataDir })
    browser = await launchChromium()
    page = browser.page
  }, 120_000)

  afterAll(async () => {
    await browser?.close()
    await mesh.stopAll()
  })

  it('logs in once with the address gridnode dashboard prints, and shows all three members', async () => {
    const out = await owner.cli(['dashboard', '--json'])
    expect(out.code).toBe(0)
    const { url } = JSON.parse(out.stdout) as { url: string }
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/dashboard\/login\?code=/)
    await page.goto(url)
    // Redirected: the address bar no longer holds the code.
    expect(new URL(page.url()).pathname).toBe('/dashboard')
    expect(page.url()).not.toContain('code=')
    await page.waitForSelector('[data-testid=connection].ok', { timeout: 15_000 })
    await eventually(
      'three online members on the page',
      async () => (await page.locator('[data-testid=member]:not(.offline)').count()) === 3,
    )
    const shown = await page
      .locator('[data-testid=member]')
      .evaluateAll((rows) => rows.map((r) => r.getAttribute('data-peer')))
    expect(shown.sort()).toEqual(nodes.map((n) => n.peerId).sort())
    // The code was spent: a second use is refused.
    const again = await fetch(url, { redirect: 'manual' })
    expect(again.status).toBe(401)
  }, 60_000)

  it("shows a job's progress reaching 100% and its task stream on more than one node", async () => {
    const job = grid.map<number, number>(
      WORK,
      'sleepThen',
      Array.from({ length: 300 }, () => 20),
    )
    const id = await job.id
    await job.results()
    // Who took work from whom, as the other members' adverts tell it (not only this node's own view).
    const others = new Set(rest.map((n) => n.peerId))
    await eventually(
      'a steal or push edge reported by another member',
      async () => {
        const seen = await page
          .locator('[data-testid=flow-edge]')
          .evaluateAll((els) => els.flatMap((e) => (e.getAttribute('data-seen-by') ?? '').split(' ')))
        return seen.some((p) => others.has(p))
      },
      8000,
    )
    const row = page.locator(`[data-testid=job][data-job="${id}"]`)
    await row.waitFor({ timeout: 15_000 })
    await eventually('progress 100%', async () => (await row.getAttribute('data-progress')) === '100', 15_000)
    expect(await row.locator('[data-testid=job-progress]').textContent()).toBe('100%')
    await eventually(
      'the task stream to show more than one node',
      async () => Number(await page.locator('[data-testid=stream]').getAttribute('data-nodes')) > 1,
      15_000,
    )
  }, 90_000)

  it("shows a clicked failed task's story", async () => {
    const job = grid.map<number, number>(WORK, 'fails', [0, 1, 2, 3])
    const id = await job.id
    expect(await job.done()).toBe('failed')
    await page.locator(`[data-testid=job][data-job="${id}"]`).click()
    const failure = page.locator('[data-testid=failures] .failure').first()
    await failure.waitFor({ timeout: 15_000 })
    await failure.click()
    const story = page.locator('[data-testid=story] tbody tr')
    await eventually('the story to show', async () => (await story.count()) >= 2, 15_000)
    expect(await page.locator('[data-testid=story]').textContent()).toMatch(/→ failed.*threw after/)
  }, 60_000)

  it('cancels a running job from the page', async () => {
    const job = grid.map<number, number>(
      WORK,
      'sleepThen',
      Array.from({ length: 60 }, () => 2000),
    )
    const id = await job.id
    const row = page.locator(`[data-testid=job][data-job="${id}"]`)
    await row.waitFor({ timeout: 15_000 })
    await eventually('some progress', async () => Number(await row.getAttribute('data-progress')) > 0, 20_000)
    mkdirSync(ARTIFACTS, { recursive: true })
    await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true })
    await row.locator('[data-testid=cancel]').click()
    await eventually(
      'the job to be cancelled',
      async () => (await row.getAttribute('data-status')) === 'cancelled',
      15_000,
    )
    expect((await owner.api<{ status: string }>(`/v1/jobs/${id}`)).status).toBe('cancelled')
    expect(await job.done()).toBe('cancelled')
  }, 90_000)
})
