/**
 * The live harness: the simulator's scenario shape against N real daemons
 * on loopback (test/integration/harness.ts), driven through the client
 * library. One owner submits a map of heavy-tailed sleeps (the task module
 * test/integration/fixtures/work.ts, `sleepThen`); during the job a script
 * kills one node with kill -9, restarts it later, and starts a new node that
 * joins. The same metrics as the simulator are read back from the daemons:
 * per-task ranOn and durationMs from GET /v1/jobs/:id/results, scheduler
 * counters from GET /v1/status.
 *
 *   npm run sim -- live [--nodes 4] [--tasks 200] [--seed n] [--json] [--netem delay=20ms,loss=1%]
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { connect } from '../../src/client/index.ts'
import type { SchedulerStats } from '../../src/scheduler/index.ts'
import { eventually, TestMesh, type TestNode } from '../../test/integration/harness.ts'
import { OUT_DIR } from '../cli.ts'
import { r3 } from '../core/record.ts'
import { Rng } from '../core/rng.ts'
import { netemUnavailable, parseNetem, runInNetns } from './netem.ts'

const WORK = new URL('../../test/integration/fixtures/work.ts', import.meta.url)
const SLOTS_PER_NODE = 2

export interface LiveOptions {
  nodes: number
  tasks: number
  seed: number
  netem?: string
  json: boolean
}

interface StoredResult {
  index: number
  ok: boolean
  ranOn: string
  durationMs: number
}

interface Status {
  peerId: string
  scheduler: SchedulerStats
}

export async function runLive(o: LiveOptions): Promise<number> {
  if (o.netem !== undefined && process.env.GRIDNODE_LIVE_IN_NETNS !== '1') {
    const why = netemUnavailable()
    if (why === undefined) {
      const argv = [
        process.execPath,
        ...process.argv.slice(1).filter((a, i, all) => a !== '--netem' && all[i - 1] !== '--netem'),
      ]
      process.stderr.write(`running inside a network namespace with netem ${o.netem}\n`)
      return runInNetns(parseNetem(o.netem), argv, { ...process.env, GRIDNODE_LIVE_IN_NETNS: '1' })
    }
    process.stderr.write(`netem unavailable (${why}): running on plain loopback\n`)
  }
  const log = (s: string) => process.stderr.write(`[live] ${s}\n`)
  const rng = new Rng(o.seed)
  const durations = Array.from({ length: o.tasks }, () => Math.round(rng.pareto(1.5, 20, 1000)))
  const total = durations.reduce((a, b) => a + b, 0)
  const mesh = new TestMesh('live')
  const events: Array<{ atMs: number; what: string }> = []
  try {
    log(`starting ${o.nodes} daemons with ${SLOTS_PER_NODE} slots each`)
    const first = await mesh.add('n0', { cpus: SLOTS_PER_NODE })
    const rest = await Promise.all(
      Array.from({ length: o.nodes - 1 }, (_, i) =>
        mesh.add(`n${i + 1}`, { cpus: SLOTS_PER_NODE, bootstrap: [first.addr] }),
      ),
    )
    const nodes = [first, ...rest]
    for (const n of nodes) await waitMembers(n, o.nodes - 1)
    const slots = o.nodes * SLOTS_PER_NODE
    const lowerBoundMs = Math.max(total / slots, Math.max(...durations))
    log(
      `mesh formed; ${o.tasks} sleeps, ${total} ms in all, lower bound ${lowerBoundMs.toFixed(0)} ms on ${slots} slots`,
    )
    const grid = await connect({ dataDir: first.dataDir })
    const t0 = Date.now()
    const job = grid.map<number, number>(WORK, 'sleepThen', durations)
    const id = await job.id
    const victim = nodes[nodes.length - 1]
    const script = chaos(mesh, victim, lowerBoundMs, t0, events, log)
    const values = await job.results()
    const makespanMs = Date.now() - t0
    await script
    const results = await first.api<StoredResult[]>(`/v1/jobs/${id}/results`)
    const live = mesh.nodes.filter(
      (n) => n.proc !== undefined && n.proc.exitCode === null && n.proc.signalCode === null,
    )
    const statuses = await Promise.all(live.map((n) => n.api<Status>('/v1/status')))
    const record = liveRecord(
      o,
      durations,
      values,
      results,
      statuses,
      makespanMs,
      lowerBoundMs,
      slots,
      events,
    )
    mkdirSync(OUT_DIR, { recursive: true })
    const file = join(OUT_DIR, `live-n${o.nodes}-s${o.seed}.json`)
    writeFileSync(file, `${JSON.stringify(record, null, 1)}\n`)
    const m = record.metrics
    log(
      `makespan ${makespanMs} ms = ${m.makespanRatio} x lower bound; steal msgs/task ${m.stealMessagesPerTask} ` +
        `(nodes alive at the end); lost ${m.tasksLost}; wrong values ${m.wrongValues}; record in ${file}`,
    )
    if (o.json) process.stdout.write(`${JSON.stringify(record, null, 1)}\n`)
    return m.tasksLost === 0 && m.wrongValues === 0 ? 0 : 1
  } finally {
    await mesh.stopAll()
  }
}

async function waitMembers(n: TestNode, want: number): Promise<void> {
  await eventually(
    `${n.name} to see ${want} peers`,
    async () => (await n.api<unknown[]>('/v1/peers')).length >= want,
    30_000,
  )
}

/** kill -9 a node at 30% of the lower bound, restart it at 60%, a new node joins at 40%. */
async function chaos(
  mesh: TestMesh,
  victim: TestNode,
  lbMs: number,
  t0: number,
  events: Array<{ atMs: number; what: string }>,
  log: (s: string) => void,
): Promise<void> {
  const at = (f: number) => new Promise((r) => setTimeout(r, Math.max(0, t0 + f * lbMs - Date.now())))
  const note = (what: string) => {
    events.push({ atMs: Date.now() - t0, what })
    log(`${Date.now() - t0} ms: ${what}`)
  }
  await at(0.3)
  await victim.kill9()
  note(`kill -9 ${victim.name}`)
  const joined = at(0.4).then(async () => {
    const n = await mesh.add(`joiner`, { cpus: SLOTS_PER_NODE, bootstrap: [mesh.nodes[0].addr] })
    note(`${n.name} started and joins`)
  })
  await at(0.6)
  await victim.start()
  note(`${victim.name} restarted`)
  await joined
}

function liveRecord(
  o: LiveOptions,
  durations: number[],
  values: number[],
  results: StoredResult[],
  statuses: Status[],
  makespanMs: number,
  lowerBoundMs: number,
  slots: number,
  events: Array<{ atMs: number; what: string }>,
) {
  const sum = (k: keyof SchedulerStats) => statuses.reduce((s, x) => s + x.scheduler[k], 0)
  const got = new Set(results.map((r) => r.index))
  const perNode: Record<string, number> = {}
  for (const r of results) perNode[r.ranOn] = (perNode[r.ranOn] ?? 0) + 1
  const wrong = values.filter((v, i) => v !== durations[i]).length
  const steals = sum('stealsSent')
  return {
    scenario: 'live',
    seed: o.seed,
    nodes: o.nodes,
    slots,
    netem: o.netem ?? null,
    inNetns: process.env.GRIDNODE_LIVE_IN_NETNS === '1',
    events,
    metrics: {
      makespanMs,
      lowerBoundMs: r3(lowerBoundMs),
      makespanRatio: r3(makespanMs / lowerBoundMs),
      meanTaskMs: r3(results.reduce((s, r) => s + r.durationMs, 0) / Math.max(1, results.length)),
      stealMessagesPerTask: r3((2 * steals) / o.tasks),
      pushesPerTask: r3(sum('pushes') / o.tasks),
      tasksLost: o.tasks - got.size,
      wrongValues: wrong,
      /** Runs beyond one per task, as counted by the daemons alive at the end (a killed node's count is lost with it). */
      extraRunsSeen: Math.max(0, sum('tasksRun') - o.tasks),
      duplicateResults: sum('duplicateResults'),
      requeued: sum('requeued'),
      backups: sum('backups'),
    },
    tasksPerNode: perNode,
    schedulerStats: Object.fromEntries(statuses.map((s) => [s.peerId, s.scheduler])),
  }
}
