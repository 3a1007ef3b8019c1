/**
 * Job figures with real daemons on loopback (PEERS.md's workloads a-c):
 * no-op throughput, single-task round trip, and skewed sleeps on 4 slots.
 */
import { connect } from '../src/client/index.ts'
import { eventually, TestMesh, type TestNode } from '../test/integration/harness.ts'

const TASKS = new URL('./fixtures/tasks.ts', import.meta.url)

/**
 * How the daemons run other nodes' tasks: GRIDNODE_BENCH_SANDBOX=none|bwrap|auto
 * (default: the daemon's own default, auto). `none` measures the scheduler and
 * protocols alone; `bwrap` adds the sandbox.
 */
export const BENCH_SANDBOX = process.env.GRIDNODE_BENCH_SANDBOX ?? 'auto'
const extraArgs = ['--sandbox', BENCH_SANDBOX]

async function meshOf(
  label: string,
  count: number,
  cpus: number,
): Promise<{ mesh: TestMesh; nodes: TestNode[] }> {
  const mesh = new TestMesh(label)
  const first = await mesh.add('n0', { cpus, extraArgs })
  const rest = await Promise.all(
    Array.from({ length: count - 1 }, (_, i) =>
      mesh.add(`n${i + 1}`, { cpus, bootstrap: [first.addr], extraArgs }),
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

/** a. One map of `count` no-op tasks, submitted on the last node, all results collected. */
export async function throughput(daemons: number, count: number): Promise<number> {
  const { mesh, nodes } = await meshOf(`bench-tp${daemons}`, daemons, 2)
  try {
    const grid = await connect({ dataDir: nodes[nodes.length - 1].dataDir })
    await grid.map(TASKS, 'noop', [0]).results() // bundle and warm the workers
    const t0 = performance.now()
    const values = await grid
      .map<number, number>(
        TASKS,
        'noop',
        Array.from({ length: count }, (_, i) => i),
      )
      .results()
    const seconds = (performance.now() - t0) / 1000
    if (values.length !== count) throw new Error('lost results')
    return Math.round(count / seconds)
  } finally {
    await mesh.stopAll()
  }
}

/** b. `count` single tasks one after another. */
export async function roundTrip(count: number): Promise<{ p50: number; p99: number }> {
  const { mesh, nodes } = await meshOf('bench-rt', 1, 2)
  try {
    const grid = await connect({ dataDir: nodes[0].dataDir })
    for (let i = 0; i < 20; i++) await grid.submit(TASKS, 'noop', [i])
    const times: number[] = []
    for (let i = 0; i < count; i++) {
      const t0 = performance.now()
      await grid.submit(TASKS, 'noop', [i])
      times.push(performance.now() - t0)
    }
    times.sort((x, y) => x - y)
    return { p50: times[Math.floor(count / 2)], p99: times[Math.floor(count * 0.99)] }
  } finally {
    await mesh.stopAll()
  }
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

/** c. 400 skewed sleeps on 4 slots (two daemons of 2 slots). */
export async function skewed(): Promise<Record<string, number>> {
  const durations = skewedDurations()
  const sum = durations.reduce((a, b) => a + b, 0)
  const bound = Math.max(sum / 4, Math.max(...durations))
  // A perfect first-come list scheduler on this order (what no scheduler blind to durations can beat).
  const slots = [0, 0, 0, 0]
  for (const d of durations) {
    slots.sort((x, y) => x - y)
    slots[0] += d
  }
  const listIdeal = Math.max(...slots)
  const { mesh, nodes } = await meshOf('bench-skew', 2, 2)
  try {
    const grid = await connect({ dataDir: nodes[1].dataDir })
    await grid.map(TASKS, 'sleep', [1, 1, 1, 1]).results()
    const t0 = performance.now()
    await grid.map(TASKS, 'sleep', durations).results()
    const makespan = performance.now() - t0
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
