/**
 * Job figures with real daemons on loopback (PEERS.md's workloads a-d):
 * no-op throughput, single-task round trip, skewed sleeps on 4 slots and
 * SHA-256 chains on 2 slots. The `...On` functions run one workload on a
 * mesh that is already up, so `peers.ts` can run several on one mesh.
 */
import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { connect, type Grid } from '../src/client/index.ts'
import { eventually, TestMesh, type TestNode } from '../test/integration/harness.ts'
import { benchBin } from './build.ts'

const TASKS = new URL('./fixtures/tasks.ts', import.meta.url)
const CPU = new URL('./fixtures/cpu.ts', import.meta.url)

/**
 * How the daemons run other nodes' tasks: GRIDNODE_BENCH_SANDBOX=none|bwrap|auto
 * (default: the daemon's own default, auto). `none` measures the scheduler and
 * protocols alone; `bwrap` adds the sandbox.
 */
export const BENCH_SANDBOX = process.env.GRIDNODE_BENCH_SANDBOX ?? 'auto'
/**
 * The daemons' log level: GRIDNODE_BENCH_LOG_LEVEL (default info, a daemon's own default; the
 * test harness's debug writes two lines per task, which the bench process then copies to a file).
 */
export const BENCH_LOG_LEVEL = process.env.GRIDNODE_BENCH_LOG_LEVEL ?? 'info'
const extraArgs = ['--sandbox', BENCH_SANDBOX, '--log-level', BENCH_LOG_LEVEL]

export async function meshOf(
  label: string,
  count: number,
  cpus: number,
): Promise<{ mesh: TestMesh; nodes: TestNode[] }> {
  const bin = await benchBin()
  const mesh = new TestMesh(label)
  const first = await mesh.add('n0', { cpus, extraArgs, bin })
  const rest = await Promise.all(
    Array.from({ length: count - 1 }, (_, i) =>
      mesh.add(`n${i + 1}`, { cpus, bootstrap: [first.addr], extraArgs, bin }),
    ),
  )
  const nodes = [first, ...rest]
  for (const n of nodes) {
    await eventually(
      `${n.name} membership`,
      async () => (await n.api<unknown[]>('/v1/peers')).length === count - 1,
      30_000,
    )
  }
  return { mesh, nodes }
}

/** The client of the mesh's last node (the submitter in every workload). */
export function submitter(nodes: TestNode[]): Promise<Grid> {
  return connect({ dataDir: nodes[nodes.length - 1].dataDir })
}

/**
 * a. Full-size unmeasured runs before the measured no-op runs, for every system alike. Start-up
 * is excluded for every system (PEERS.md), and a daemon's start-up includes V8 compiling its
 * per-task path, hundreds of functions that move up V8's tiers as they get hot. On this 2-core
 * VM, maps of 10,000 no-ops in a row on a fresh daemon (sandbox none) ran at 11-17k/s, then
 * 15-19k/s, 17-23k/s, 20-28k/s, and 18-35k/s from the fifth on. A daemon runs for days; its
 * first 40,000 tasks are its warm-up. The rate after one run (the figure this bench printed
 * before) is kept beside the steady one.
 */
export const WARM_RUNS = 4
/**
 * a. Runs measured after the warm-up; the median is the figure. Single warm runs of one daemon
 * swing by a quarter either way on this VM (20-35k/s in a row), piscina's by up to a third.
 */
export const MEASURED_RUNS = 5

/** a. The rate of one run after one full-size run, and the median of the runs after WARM_RUNS of them. */
export interface NoopRates {
  afterOne: number
  steady: number
}

/**
 * a. Times `run` (one batch of `count` no-ops, all results collected) WARM_RUNS + MEASURED_RUNS
 * times in a row: tasks/s of the second run, and the median of the last MEASURED_RUNS.
 */
export async function warmThenMeasure(count: number, run: () => Promise<void>): Promise<NoopRates> {
  const rates: number[] = []
  for (let i = 0; i < WARM_RUNS + MEASURED_RUNS; i++) {
    const t0 = performance.now()
    await run()
    rates.push(Math.round(count / ((performance.now() - t0) / 1000)))
  }
  const measured = rates.slice(WARM_RUNS).sort((x, y) => x - y)
  return { afterOne: rates[1], steady: measured[Math.floor(measured.length / 2)] }
}

/** a. The steady rate under the name the ratios use (`a_<system>_noopTasksPerSec`), the rate after one run beside it. */
export function noopRates(f: Record<string, number>, system: string, r: NoopRates): void {
  f[`a_${system}_noopTasksPerSec`] = r.steady
  f[`a_${system}_noopAfterOneRunTasksPerSec`] = r.afterOne
}

/** a. One map of `count` no-op tasks, submitted on the last node, all results collected. */
export async function throughput(daemons: number, count: number): Promise<NoopRates> {
  const { mesh, nodes } = await meshOf(`bench-tp${daemons}`, daemons, 2)
  try {
    return await throughputOn(await submitter(nodes), count)
  } finally {
    await mesh.stopAll()
  }
}

/** a. on a mesh that is up: tasks/s of maps of `count` no-ops (warmThenMeasure). */
export async function throughputOn(grid: Grid, count: number): Promise<NoopRates> {
  await grid.map(TASKS, 'noop', [0]).results() // bundle and start the workers
  const inputs = Array.from({ length: count }, (_, i) => i)
  return warmThenMeasure(count, async () => {
    const values = await grid.map<number, number>(TASKS, 'noop', inputs).results()
    if (values.length !== count) throw new Error('lost results')
  })
}

/** b. on a mesh that is up: p50 / p99 (ms) of `count` single tasks one after another (after `count` unmeasured). */
export async function roundTripOn(grid: Grid, count: number): Promise<{ p50: number; p99: number }> {
  for (let i = 0; i < count; i++) await grid.submit(TASKS, 'noop', [i])
  return timedSubmits(grid, count)
}

/** b. p50 / p99 (ms) of `count` single no-op tasks one after another, each timed. */
export async function timedSubmits(grid: Grid, count: number): Promise<{ p50: number; p99: number }> {
  const times: number[] = []
  for (let i = 0; i < count; i++) {
    const t0 = performance.now()
    await grid.submit(TASKS, 'noop', [i])
    times.push(performance.now() - t0)
  }
  return percentiles(times)
}

/** p50 and p99 of `times` (sorted in place). */
export function percentiles(times: number[]): { p50: number; p99: number } {
  times.sort((x, y) => x - y)
  return { p50: times[Math.floor(times.length / 2)], p99: times[Math.floor(times.length * 0.99)] }
}

/** d. PEERS.md's CPU-bound task: 2,000 tasks of a 2,000-round SHA-256 chain. */
export const CPU_TASKS = 2000
export const CPU_ROUNDS = 2000

/**
 * d. Serial milliseconds for `tasks` chains of `rounds` in this thread (what one core does
 * alone): a warm-up, then a tenth of them timed and scaled, so a 2-core figure needs no
 * long serial run. Timed in CPU time, so other work on a shared machine does not inflate it
 * (it still slows the run it is compared with).
 */
export function serialChainMs(tasks = CPU_TASKS, rounds = CPU_ROUNDS): number {
  chains(Math.ceil(tasks / 40), rounds) // JIT warm-up
  const part = Math.ceil(tasks / 10)
  return chains(part, rounds) * (tasks / part)
}

/**
 * CPU time (ms) of `n` chains in this thread: what a core does alone, whatever else the machine
 * runs (the thread's own time: the process's would add V8's GC helpers, about 10% more).
 */
function chains(n: number, rounds: number): number {
  const usage = process.threadCpuUsage ?? process.cpuUsage
  const t0 = usage()
  for (let t = 0; t < n; t++) {
    let h: Buffer = Buffer.from('gridnode')
    for (let i = 0; i < rounds; i++) h = createHash('sha256').update(h).digest()
  }
  const used = usage(t0)
  return (used.user + used.system) / 1000
}

/** d. on a mesh of `daemons` that is up: one map of `tasks` SHA-256 chains (after every daemon ran some). */
export async function cpuBoundOn(
  grid: Grid,
  daemons: number,
  tasks = CPU_TASKS,
  rounds = CPU_ROUNDS,
  atStart?: () => void,
): Promise<{ ms: number; runMs: number }> {
  await warmEveryNode(grid, daemons, CPU, 'shaChain', rounds)
  atStart?.()
  const t0 = performance.now()
  let runMs = 0
  let n = 0
  for await (const r of grid.map<number, string>(
    CPU,
    'shaChain',
    Array.from({ length: tasks }, () => rounds),
  )) {
    if (r.error !== undefined) throw new Error(`a chain failed: ${r.error.message}`)
    runMs += r.durationMs ?? 0
    n++
  }
  const ms = performance.now() - t0
  if (n !== tasks) throw new Error('lost results')
  return { ms, runMs }
}

/**
 * d. with `daemons` daemons of `slots` slots each: the share of `slots x daemons` serial cores,
 * and where the rest went: `workerBusyShare` is the time the workers spent in tasks over
 * slots x makespan (below 1: gaps between tasks), `taskInflation` a task's mean run time
 * over its serial time (above 1: the task shared its core with the daemons or other work).
 * The serial time is measured just before, in this process, in CPU time; on a machine shared
 * with other work the share drops with it, the busy share much less.
 */
export async function cpuBound(daemons: number, slots: number): Promise<Record<string, number>> {
  const serialMs = serialChainMs()
  const { mesh, nodes } = await meshOf(`bench-cpu${daemons}`, daemons, slots)
  try {
    const pids = nodes.map((n) => n.proc?.pid ?? 0)
    let before: ThreadCpu[] = []
    let client = process.cpuUsage()
    const { ms, runMs } = await cpuBoundOn(await submitter(nodes), daemons, CPU_TASKS, CPU_ROUNDS, () => {
      before = pids.map(threadCpuMs)
      client = process.cpuUsage()
    })
    const used = process.cpuUsage(client)
    const spent = pids.map((pid, i) => minus(threadCpuMs(pid), before[i]))
    const sum = (k: keyof ThreadCpu) => Math.round(spent.reduce((a, t) => a + t[k], 0))
    return {
      serialMs: Math.round(serialMs),
      makespanMs: Math.round(ms),
      shareOfSerialCores: round3(serialMs / (daemons * slots) / ms),
      workerBusyShare: round3(runMs / (daemons * slots) / ms),
      taskInflation: round3(runMs / serialMs),
      cpuMs_taskThreads: sum('tasks'),
      cpuMs_daemonMainThreads: sum('main'),
      cpuMs_daemonV8Helpers: sum('v8'),
      cpuMs_daemonOtherThreads: sum('other'),
      cpuMs_client: Math.round((used.user + used.system) / 1000),
    }
  } finally {
    await mesh.stopAll()
  }
}

/**
 * CPU time (ms) of a daemon's threads by kind, from /proc (Linux; zeros elsewhere): its worker
 * threads running tasks, its main thread (scheduler, network, API), V8's helper threads (GC,
 * compiler) and the rest (libuv's pool). Sandboxed tasks run in processes of their own, not here.
 */
interface ThreadCpu {
  tasks: number
  main: number
  v8: number
  other: number
}

function threadCpuMs(pid: number): ThreadCpu {
  const out: ThreadCpu = { tasks: 0, main: 0, v8: 0, other: 0 }
  let tids: string[] = []
  try {
    tids = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const tid of tids) {
    try {
      const comm = readFileSync(`/proc/${pid}/task/${tid}/comm`, 'utf8').trim()
      const fields = readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8').split(') ')[1].split(' ')
      const ms = ((Number(fields[11]) + Number(fields[12])) * 1000) / 100 // utime + stime, USER_HZ 100
      const kind =
        tid === String(pid)
          ? 'main'
          : comm === 'gridnode-task'
            ? 'tasks'
            : comm.startsWith('V8')
              ? 'v8'
              : 'other'
      out[kind] += ms
    } catch {
      // The thread ended between the listing and the read.
    }
  }
  return out
}

function minus(a: ThreadCpu, b: ThreadCpu | undefined): ThreadCpu {
  if (b === undefined) return a
  return { tasks: a.tasks - b.tasks, main: a.main - b.main, v8: a.v8 - b.v8, other: a.other - b.other }
}

function round3(x: number): number {
  return Number(x.toFixed(3))
}

/** PEERS.md's skewed list: Pareto(1.5), mean ~20 ms, capped at 1,000 ms, one 1,000 ms task late in the list. */
export function skewedDurations(n = 400, seed = 42): number[] {
  let s = seed >>> 0
  const rand = () => {
    s = (s + 0x6d2b79f5) >>> 0
    let t = s
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
  const xm = 20 / 3 // Pareto(alpha 1.5) has mean 3 * xm
  const out = Array.from({ length: n }, () => Math.min(1000, Math.round(xm / (1 - rand()) ** (1 / 1.5))))
  out[Math.floor(n * 0.9)] = 1000
  return out
}

/** c. The lower bound max(sum / slots, longest) and a perfect first-come list scheduler's makespan on this order. */
export function skewedBounds(durations = skewedDurations(), slots = 4): { bound: number; listIdeal: number } {
  const sum = durations.reduce((a, b) => a + b, 0)
  const bound = Math.max(sum / slots, Math.max(...durations))
  // What no scheduler blind to durations can beat: each task to the slot that frees first.
  const free = new Array<number>(slots).fill(0)
  for (const d of durations) {
    free.sort((x, y) => x - y)
    free[0] += d
  }
  return { bound, listIdeal: Math.max(...free) }
}

/** c. 400 skewed sleeps on 4 slots (two daemons of 2 slots). */
export async function skewed(): Promise<Record<string, number>> {
  const { bound, listIdeal } = skewedBounds()
  const { mesh, nodes } = await meshOf('bench-skew', 2, 2)
  try {
    const makespan = await skewedOn(await submitter(nodes))
    return {
      lowerBoundMs: Math.round(bound),
      firstComeIdealMs: listIdeal,
      firstComeIdealRatio: Number((listIdeal / bound).toFixed(3)),
      makespanMs: Math.round(makespan),
      ratio: Number((makespan / bound).toFixed(3)),
      ratioToFirstComeIdeal: Number((makespan / listIdeal).toFixed(3)),
    }
  } finally {
    await mesh.stopAll()
  }
}

/**
 * Start-up excluded, as PEERS.md measured every peer: maps of 30 ms sleeps (or `input` to
 * `exportName`) until every daemon has run one (it has fetched the bundle and started its
 * workers, sandboxed ones included), at most five tries. Then, unless the sandbox is off, a
 * pause of SPARE_START_MS: a sandboxed worker serves one job for its life, and each job a
 * node takes binds one of the spares it keeps started; the warm-up's jobs, back to back, used
 * them up, and the next job would wait for a fresh sandboxed Node process to start (0.15-0.3 s
 * here). A mesh whose jobs come less often than that finds its spares ready.
 */
export async function warmEveryNode(
  grid: Grid,
  daemons: number,
  module = TASKS,
  exportName = 'sleep',
  input: unknown = 30,
): Promise<void> {
  for (let i = 0; i < 5; i++) {
    const ran = new Set<string>()
    const inputs = Array.from({ length: 8 * daemons }, () => input)
    for await (const r of grid.map(module, exportName, inputs)) if (r.ranOn !== undefined) ran.add(r.ranOn)
    if (ran.size >= daemons) break
  }
  if (BENCH_SANDBOX !== 'none') await new Promise((r) => setTimeout(r, SPARE_START_MS))
}

const SPARE_START_MS = 1000

/** c. on a mesh that is up: the makespan (ms) of one map of the skewed sleeps (after every daemon ran some). */
export async function skewedOn(grid: Grid, durations = skewedDurations(), daemons = 2): Promise<number> {
  await warmEveryNode(grid, daemons)
  const t0 = performance.now()
  await grid.map(TASKS, 'sleep', durations).results()
  return performance.now() - t0
}
