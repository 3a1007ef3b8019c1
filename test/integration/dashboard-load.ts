/**
 * The dashboard under load, for the browser test and `npm run bench --
 * dashboard`: the real hub, Activity, routes and page assets on a real API
 * server on loopback, fed synthetic state — 100 members with GPUs and
 * adverts (each naming 16 steal partners), a 100,000-task job whose progress
 * moves, thousands of task runs a second into the task stream, and a share
 * of failures — and a headless Chromium page measured from the inside
 * (long tasks, frame intervals, DOM size, event sizes).
 */
import { randomBytes } from 'node:crypto'
import { existsSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { pino } from 'pino'
import { type BrowserContext, chromium, type Page } from 'playwright-core'
import { ApiServer } from '../../src/node/api.ts'
import { Activity } from '../../src/node/dashboard/activity.ts'
import { DashboardHub, type DashboardSources } from '../../src/node/dashboard/hub.ts'
import { registerDashboardRoutes } from '../../src/node/dashboard/routes.ts'
import type { AdvertFlow, CapacityAdvert } from '../../src/protocol/advert/codec.ts'
import type { Command, SchedulerAdvert, SchedulerEvent, TaskResult } from '../../src/scheduler/types.ts'

export const CHROMIUM = '/usr/bin/chromium'
export const hasChromium = existsSync(CHROMIUM)

export interface LoadOptions {
  members: number
  /** Tasks of the big job. */
  tasks: number
  /** Task runs a second into the stream (spread over every member's slots). */
  runsPerSec: number
  /** Share of runs that fail. */
  failRate: number
  slotsPerMember: number
  gpusPerMember: number
}

export const FULL_LOAD: LoadOptions = {
  members: 100,
  tasks: 100_000,
  runsPerSec: 3000,
  failRate: 0.02,
  slotsPerMember: 32,
  gpusPerMember: 4,
}

export interface LoadedDashboard {
  url: string
  self: string
  peers: string[]
  bigJob: string
  /** A fresh one-time login address. */
  loginUrl(): Promise<string>
  /** Runs fed so far. */
  fed(): number
  /** The hub's time per tick (one page open) since the last call. */
  hubTicks(): { maxMs: number; meanMs: number }
  stop(): Promise<void>
}

const FEED_MS = 100

/** Starts the real hub and routes on 127.0.0.1 with synthetic sources that keep moving. */
export async function startLoadedDashboard(o: LoadOptions = FULL_LOAD): Promise<LoadedDashboard> {
  const peers = await Promise.all(
    Array.from({ length: o.members }, async () =>
      peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString(),
    ),
  )
  const self = peers[0]
  const activity = new Activity(self)
  const sched = (running: number): SchedulerAdvert => ({
    slots: o.slotsPerMember,
    freeSlots: 0,
    memoryMB: 256_000,
    freeMemoryMB: 64_000,
    gpus: o.gpusPerMember,
    freeGpus: 1,
    ready: [{ resources: { cpu: 1, gpu: 0, memoryMB: 512 }, count: 400 }],
    running,
    meanTaskMs: 1000,
  })
  const gpus = Array.from({ length: o.gpusPerMember }, (_, i) => ({
    index: i,
    name: 'NVIDIA H100 80GB HBM3',
    memoryTotalMB: 81_559,
    memoryFreeMB: 1000,
    free: i === 0,
  }))
  const flowsOf = (i: number): AdvertFlow[] =>
    Array.from({ length: 16 }, (_, k) => ({
      peer: peers[(i + 1 + ((k * 37 + i * 11) % (peers.length - 1))) % peers.length],
      kind: k % 5 === 0 ? 'push' : 'steal',
      out: k % 2 === 0,
      tasks: 1 + ((i * 7 + k * 13) % 200),
      agoMs: (k * 300) % 8000,
    }))
  let seq = 0
  const advertOf = (i: number, now: number): CapacityAdvert => ({
    v: 1,
    mesh: 'load',
    peerId: peers[i],
    seq: ++seq,
    sentAtMs: now,
    version: '0.1.0',
    cpus: o.slotsPerMember,
    load1: 20 + (i % 10),
    memoryTotalMB: 256_000,
    memoryFreeMB: 64_000 + i,
    gpus,
    sched: sched(o.slotsPerMember - (i % 3)),
    flows: flowsOf(i),
  })
  const start = Date.now()
  const table = peers.slice(1).map((peerId, k) => ({
    peerId,
    advert: advertOf(k + 1, start),
    lastSeenAt: start,
    rttMs: 0.3 + (k % 10) / 10,
  }))

  // Jobs: the big one, running; 29 more, most finished.
  const bigJob = `load-${randomBytes(4).toString('hex')}`
  const jobs = [
    { id: bigJob, total: o.tasks, status: 'running', done: Math.floor(o.tasks / 5), failed: 0 },
    ...Array.from({ length: 29 }, (_, k) => ({
      id: `old-${k}`,
      total: 1000 * (k + 1),
      status: k < 3 ? 'running' : k % 4 === 0 ? 'failed' : 'done',
      done: 1000 * (k + 1) - (k % 4 === 0 ? 7 : 0),
      failed: k % 4 === 0 ? 7 : 0,
    })),
  ].map((j) => ({
    ...j,
    name: j.id,
    createdAt: start,
    finishedAt: j.status === 'running' ? null : start,
    nodes: o.members,
    blocked: '',
    spec: { work: { kind: 'function', exportName: 'simulate' } },
  }))
  const big = jobs[0]

  const driver = {
    schedulerAdvert: () => sched(o.slotsPerMember),
    busyGpus: () => new Set([1, 2, 3].filter((g) => g < o.gpusPerMember)),
    jobProgress: (id: string) => {
      const j = jobs.find((x) => x.id === id)
      return j && { done: j.done, failed: j.failed, running: o.members * o.slotsPerMember }
    },
    hub: {
      store: {
        jobs: (n: number) => jobs.slice(0, n),
        job: (id: string) => jobs.find((j) => j.id === id),
        results: () => [],
      },
      blockedReason: () => '',
    },
  }
  const sources = {
    node: { peerId: { toString: () => self } },
    driver,
    adverts: { table: { list: () => table } },
    capacity: {
      cores: o.slotsPerMember,
      slots: o.slotsPerMember,
      gpus,
      memoryTotalMB: 256_000,
    },
    mesh: 'load',
    version: '0.1.0',
    activity,
    membership: { list: () => ({ members: peers.map((peer) => ({ peer, lastSeenMs: 0 })) }) },
  } as unknown as DashboardSources

  // The feed: every FEED_MS, runs spread over members and slots, results into Activity as the
  // driver's observer would hand them (persist-results), steals both ways, adverts refreshed.
  let fed = 0
  let debt = 0
  // Long errors (stack traces), as real failures bring: the activity keeps 2,000 characters of each.
  const error = `Error: simulated failure\n${'    at simulate (file:///work/task.ts:42:7)\n'.repeat(60)}`
  const timer = setInterval(() => {
    const now = Date.now()
    debt += (o.runsPerSec * FEED_MS) / 1000
    const n = Math.floor(debt)
    debt -= n
    const results: TaskResult[] = []
    for (let k = 0; k < n; k++) {
      const fail = Math.random() < o.failRate
      const durationMs = 200 + Math.floor(Math.random() * 1800)
      const index = big.done + big.failed < big.total ? big.done + big.failed : fed % big.total
      if (big.done + big.failed < big.total) {
        if (fail) big.failed++
        else big.done++
      }
      results.push({
        job: fed % 10 === 0 ? 'old-0' : bigJob,
        index,
        attempt: 1,
        ranOn: peers[fed % peers.length],
        outcome: fail
          ? { status: 'threw', error, durationMs }
          : { status: 'ok', value: new Uint8Array(0), durationMs },
      })
      fed++
    }
    if (big.done + big.failed >= big.total) big.status = 'done'
    const event = { type: 'results-received', at: now } as unknown as SchedulerEvent
    const commands: Command[] = [
      { type: 'persist-results', cause: 'load', results },
      {
        type: 'reply-steal',
        cause: 'load',
        to: peers[1 + (fed % (peers.length - 1))],
        batch: { tasks: [{}] },
      },
    ] as unknown as Command[]
    activity.step(event, commands)
    activity.step({ type: 'steal-granted', from: peers[2], batch: { tasks: [{}, {}] }, at: now } as never, [])
    for (let k = 0; k < table.length; k++) {
      if ((k + seq) % 10 !== 0) continue
      table[k].advert = advertOf(k + 1, now)
      table[k].lastSeenAt = now
    }
  }, FEED_MS)

  const token = randomBytes(16).toString('hex')
  const api = new ApiServer(token, pino({ level: 'silent' }))
  const hub = new DashboardHub(sources)
  // The daemon's side of a tick (snapshot, each page's runs, JSON, write), timed.
  const tickMs: number[] = []
  const inner = hub as unknown as { tick: () => void }
  const tick = inner.tick.bind(hub)
  inner.tick = () => {
    const t0 = performance.now()
    tick()
    tickMs.push(performance.now() - t0)
  }
  registerDashboardRoutes(api, hub, sources)
  const url = await api.listen('127.0.0.1', 0)
  return {
    url,
    self,
    peers,
    bigJob,
    fed: () => fed,
    hubTicks: () => {
      const all = tickMs.splice(0)
      return {
        maxMs: Math.round(Math.max(0, ...all) * 10) / 10,
        meanMs: Math.round((all.reduce((a, b) => a + b, 0) / Math.max(1, all.length)) * 10) / 10,
      }
    },
    async loginUrl() {
      const res = await fetch(`${url}/v1/dashboard/login-codes`, {
        method: 'POST',
        headers: { authorization: `Bearer ${token}` },
      })
      const { path } = (await res.json()) as { path: string }
      return `${url}${path}`
    },
    async stop() {
      clearInterval(timer)
      hub.close()
      await api.close()
    },
  }
}

export async function launchChromium(): Promise<{
  context: BrowserContext
  page: Page
  close(): Promise<void>
}> {
  const profile = mkdtempSync(join(tmpdir(), 'gridnode-chromium-'))
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1400, height: 1000 },
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  const page = context.pages()[0] ?? (await context.newPage())
  return {
    context,
    page,
    async close() {
      await context.close()
      rmSync(profile, { recursive: true, force: true })
    },
  }
}

/** Installed before the page's own script: long tasks, frame times, event sizes and handling times. */
const PROBE = `(() => {
  const m = (window.__gridnodeProbe = { longTasks: [], frames: [], events: [], measuring: false })
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) if (m.measuring) m.longTasks.push(e.duration)
  }).observe({ type: 'longtask', buffered: false })
  let last = 0
  const frame = (t) => {
    if (m.measuring && last > 0) m.frames.push(t - last)
    last = t
    requestAnimationFrame(frame)
  }
  requestAnimationFrame(frame)
  const Orig = window.EventSource
  window.EventSource = class extends Orig {
    addEventListener(type, fn, opts) {
      return super.addEventListener(type, (e) => {
        const t0 = performance.now()
        fn(e)
        if (m.measuring) m.events.push({ type, bytes: e.data.length, ms: performance.now() - t0 })
      }, opts)
    }
  }
})()`

const probed = new WeakSet<Page>()

export interface PageFigures {
  seconds: number
  longTasks: number
  longestTaskMs: number
  longTaskMsPerSec: number
  frames: number
  p50FrameMs: number
  p95FrameMs: number
  maxFrameMs: number
  ticks: number
  maxTickBytes: number
  meanTickBytes: number
  maxTickHandlerMs: number
  domNodes: number
  heapMB: number
  streamRuns: number
  streamNodes: number
  memberRowsInDom: number
  memberCount: number
  flowEdges: number
  /** The largest answer of the failures panel's polls. */
  failuresBytes: number
  bigJobProgress: number
}

/** Logs in, opens the big job's panel, scrolls the members, and measures `seconds` of the live page. */
export async function measureDashboard(
  page: Page,
  load: LoadedDashboard,
  seconds: number,
): Promise<PageFigures> {
  if (!probed.has(page)) await page.addInitScript(PROBE)
  probed.add(page)
  await page.goto(await load.loginUrl())
  await page.waitForSelector('[data-testid=connection].ok', { timeout: 30_000 })
  const row = page.locator(`[data-testid=job][data-job="${load.bigJob}"]`)
  await row.waitFor({ timeout: 30_000 })
  await row.click()
  await page.locator('[data-testid=job-panel]').waitFor({ timeout: 30_000 })
  // Let the stream fill its window before measuring.
  await page.waitForTimeout(3000)
  await page.evaluate(() => {
    ;(window as unknown as { __gridnodeProbe: { measuring: boolean } }).__gridnodeProbe.measuring = true
  })
  const t0 = Date.now()
  // Scroll the member list while measuring, as a user would.
  while (Date.now() - t0 < seconds * 1000) {
    await page.locator('[data-testid=members]').evaluate((el) => {
      el.scrollTop = (el.scrollTop + 260) % Math.max(1, el.scrollHeight - el.clientHeight)
    })
    await page.waitForTimeout(500)
  }
  const raw = await page.evaluate(() => {
    const m = (
      window as unknown as {
        __gridnodeProbe: {
          longTasks: number[]
          frames: number[]
          events: Array<{ type: string; bytes: number; ms: number }>
          measuring: boolean
        }
      }
    ).__gridnodeProbe
    m.measuring = false
    const stream = document.querySelector('[data-testid=stream]')
    const heap = (performance as unknown as { memory?: { usedJSHeapSize: number } }).memory
    return {
      longTasks: m.longTasks,
      frames: m.frames,
      ticks: m.events.filter((e) => e.type === 'tick'),
      domNodes: document.getElementsByTagName('*').length,
      heapMB: heap ? heap.usedJSHeapSize / 2 ** 20 : 0,
      streamRuns: Number(stream?.getAttribute('data-runs') ?? 0),
      streamNodes: Number(stream?.getAttribute('data-nodes') ?? 0),
      memberRowsInDom: document.querySelectorAll('[data-testid=member]').length,
      memberCount: Number(document.querySelector('[data-testid=members]')?.getAttribute('data-rows') ?? 0),
      flowEdges: document.querySelectorAll('[data-testid=flow-edge]').length,
      failuresBytes: Math.max(
        0,
        ...performance
          .getEntriesByType('resource')
          .filter((e) => e.name.includes('/failures'))
          .map((e) => (e as PerformanceResourceTiming).encodedBodySize),
      ),
    }
  })
  const progress = Number(await row.getAttribute('data-progress'))
  const frames = [...raw.frames].sort((a, b) => a - b)
  const q = (p: number) => frames[Math.min(frames.length - 1, Math.floor(p * frames.length))] ?? 0
  const r1 = (x: number) => Math.round(x * 10) / 10
  const bytes = raw.ticks.map((t) => t.bytes)
  return {
    seconds,
    longTasks: raw.longTasks.length,
    longestTaskMs: r1(Math.max(0, ...raw.longTasks)),
    longTaskMsPerSec: r1(raw.longTasks.reduce((a, b) => a + b, 0) / seconds),
    frames: frames.length,
    p50FrameMs: r1(q(0.5)),
    p95FrameMs: r1(q(0.95)),
    maxFrameMs: r1(frames.at(-1) ?? 0),
    ticks: raw.ticks.length,
    maxTickBytes: Math.max(0, ...bytes),
    meanTickBytes: Math.round(bytes.reduce((a, b) => a + b, 0) / Math.max(1, bytes.length)),
    maxTickHandlerMs: r1(Math.max(0, ...raw.ticks.map((t) => t.ms))),
    domNodes: raw.domNodes,
    heapMB: r1(raw.heapMB),
    streamRuns: raw.streamRuns,
    streamNodes: raw.streamNodes,
    memberRowsInDom: raw.memberRowsInDom,
    memberCount: raw.memberCount,
    flowEdges: raw.flowEdges,
    failuresBytes: raw.failuresBytes,
    bigJobProgress: progress,
  }
}
