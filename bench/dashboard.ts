/**
 * `npm run bench -- dashboard`: the real dashboard page in headless Chromium
 * against the real hub fed 100 members (GPUs, adverts naming 16 steal
 * partners each), a 100,000-task job moving at 3,000 tasks/s with 2%
 * failures, and the task stream at 3,000 runs/s; 10 s measured in the page
 * (long tasks, frame intervals, DOM size, event sizes). Needs /usr/bin/chromium.
 */
import {
  FULL_LOAD,
  hasChromium,
  type LoadOptions,
  launchChromium,
  measureDashboard,
  startLoadedDashboard,
} from '../test/integration/dashboard-load.ts'

export async function dashboardBench(
  seconds = 10,
  load_: Partial<LoadOptions> = {},
): Promise<Record<string, number | string>> {
  if (!hasChromium) return { skipped: '/usr/bin/chromium is missing' }
  const o = { ...FULL_LOAD, ...load_ }
  const load = await startLoadedDashboard(o)
  const browser = await launchChromium()
  try {
    const figures = await measureDashboard(browser.page, load, seconds)
    return {
      members: o.members,
      tasks: o.tasks,
      runsPerSecFed: o.runsPerSec,
      ...figures,
    }
  } finally {
    await browser.close()
    await load.stop()
  }
}

if (process.argv[1]?.endsWith('bench/dashboard.ts')) {
  const seconds = Number(process.argv[2] ?? 10)
  console.log(await dashboardBench(seconds, { runsPerSec: Number(process.argv[3] ?? FULL_LOAD.runsPerSec) }))
}
