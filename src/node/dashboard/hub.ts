/**
 * The dashboard's live data: one snapshot of the mesh and this node's jobs
 * per tick, shared by every open page, plus each page's share of the task
 * stream (runs since its last tick, capped per tick). Sent as server-sent
 * events: `hello` once, then `tick` every TICK_MS.
 */
import type { ServerResponse } from 'node:http'
import type { AdvertFlow } from '../../protocol/advert/codec.ts'
import type { SchedulerAdvert } from '../../scheduler/types.ts'
import type { Adverts } from '../adverts.ts'
import type { GridLibp2p } from '../create-node.ts'
import type { Driver } from '../driver.ts'
import { type ProbedCapacity, sampleLoad } from '../probe/capacity.ts'
import { type Activity, FLOW_WINDOW_MS, type Flow, type TaskRun } from './activity.ts'
import {
  type FlowRow,
  type Hello,
  type JobRow,
  type MemberRow,
  RUN_FIELDS,
  type RunColumns,
  type Tick,
} from './types.ts'

export const TICK_MS = 1000
/** Runs a page gets per tick at most; the rest are counted (`skipped`). */
export const RUNS_PER_TICK = 5000
const JOBS_SHOWN = 30

export interface DashboardSources {
  node: GridLibp2p
  driver: Driver
  adverts: Adverts
  capacity: ProbedCapacity
  mesh: string
  version: string
  activity: Activity
  membership?: { list(): { members: Array<{ peer: string; lastSeenMs: number | null }> } }
}

interface Client {
  res: ServerResponse
  seq: number
}

export class DashboardHub {
  private readonly src: DashboardSources
  private readonly clients = new Set<Client>()
  private timer?: NodeJS.Timeout

  constructor(src: DashboardSources) {
    this.src = src
  }

  /** Streams to `res` until it closes. */
  open(res: ServerResponse): void {
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      connection: 'keep-alive',
    })
    const self = this.src.node.peerId.toString()
    const hello: Hello = { self, mesh: this.src.mesh, version: this.src.version, now: Date.now() }
    res.write(`event: hello\ndata: ${JSON.stringify(hello)}\n\n`)
    // The page starts with the last 30 s or so of runs, not the whole buffer.
    const client: Client = { res, seq: Math.max(0, this.src.activity.seq - RUNS_PER_TICK) }
    this.clients.add(client)
    res.on('close', () => {
      this.clients.delete(client)
      if (this.clients.size === 0) this.stop()
    })
    this.send(client, this.snapshot())
    this.timer ??= setInterval(() => this.tick(), TICK_MS)
  }

  stop(): void {
    clearInterval(this.timer)
    this.timer = undefined
  }

  close(): void {
    this.stop()
    for (const c of this.clients) c.res.end()
    this.clients.clear()
  }

  private tick(): void {
    const snap = this.snapshot()
    for (const c of this.clients) this.send(c, snap)
  }

  private send(c: Client, snap: Omit<Tick, 'stream' | 'skipped'>): void {
    if (c.res.writableEnded || c.res.destroyed) return
    // A page that cannot keep up (its socket buffer full) skips this tick rather than queue it.
    if (c.res.writableLength > 4 * 1024 * 1024) return
    const { runs, seq, skipped } = this.src.activity.runsSince(c.seq, RUNS_PER_TICK)
    c.seq = seq
    const tick: Tick = { ...snap, stream: runColumns(runs, snap.now), skipped }
    c.res.write(`event: tick\ndata: ${JSON.stringify(tick)}\n\n`)
  }

  snapshot(): Omit<Tick, 'stream' | 'skipped'> {
    const now = Date.now()
    return { now, members: this.members(now), flows: this.flows(now), jobs: this.jobs(now) }
  }

  members(now: number): MemberRow[] {
    const { node, driver, adverts, capacity } = this.src
    const self = node.peerId.toString()
    const sched = driver.schedulerAdvert()
    const load = sampleLoad()
    const busyGpus = driver.busyGpus()
    const rows: MemberRow[] = [
      {
        peer: self,
        self: true,
        online: true,
        slots: capacity.slots,
        busy: Math.min(capacity.slots, sched.running),
        freeForOthers: sched.freeSlots,
        ready: sched.ready.reduce((n, c) => n + c.count, 0),
        gpus: capacity.gpus.length,
        gpusFree: capacity.gpus.length - busyGpus.size,
        memoryTotalMB: capacity.memoryTotalMB,
        memoryFreeMB: load.memoryFreeMB,
        load1: load.load1,
        ...policyOf(sched),
        advertAgeMs: 0,
        pingMs: null,
        version: this.src.version,
      },
    ]
    const seen = new Set([self])
    for (const e of adverts.table.list()) {
      seen.add(e.peerId)
      const a = e.advert
      rows.push({
        peer: e.peerId,
        self: false,
        online: true,
        slots: a.sched.slots,
        busy: Math.min(a.sched.slots, a.sched.running),
        freeForOthers: a.sched.freeSlots,
        ready: a.sched.ready.reduce((n, c) => n + c.count, 0),
        gpus: a.gpus.length,
        gpusFree: a.gpus.filter((g) => g.free).length,
        memoryTotalMB: a.memoryTotalMB,
        memoryFreeMB: a.memoryFreeMB,
        load1: a.load1,
        ...policyOf(a.sched),
        advertAgeMs: now - e.lastSeenAt,
        pingMs: e.rttMs ?? null,
        version: a.version,
      })
    }
    for (const m of this.src.membership?.list().members ?? []) {
      if (seen.has(m.peer)) continue
      const heard = this.src.activity.lastSeen.get(m.peer)
      rows.push(offlineRow(m.peer, heard !== undefined ? now - heard : m.lastSeenMs))
    }
    return rows
  }

  /** Who takes work from whom across the mesh: this node's flows and every member's advertised ones. */
  flows(now: number): FlowRow[] {
    const self = this.src.node.peerId.toString()
    const local = this.src.activity.recentFlows(now)
    const remote: RemoteFlows[] = []
    for (const e of this.src.adverts.table.list())
      if (e.advert.flows !== undefined)
        remote.push({ peer: e.peerId, flows: e.advert.flows, ageMs: Math.max(0, now - e.lastSeenAt) })
    return meshFlows(self, local, remote, now)
  }

  jobs(now: number): JobRow[] {
    const { driver, activity } = this.src
    return driver.hub.store.jobs(JOBS_SHOWN).map((j) => {
      const live = j.status === 'running' ? driver.jobProgress(j.id) : undefined
      const a = activity.jobs.get(j.id)
      const nodes = [...(a?.byNode ?? [])].sort((x, y) => y[1] - x[1])
      const top = nodes.slice(0, 8).map(([peer, tasks]) => ({ peer, tasks }))
      const rest = nodes.slice(8).reduce((n, [, t]) => n + t, 0)
      if (rest > 0) top.push({ peer: 'others', tasks: rest })
      const w = j.spec.work
      return {
        id: j.id,
        name: j.name,
        status: j.status,
        total: j.total,
        done: live?.done ?? j.done,
        failed: live?.failed ?? j.failed,
        running: live?.running ?? 0,
        tasksPerSec: j.status === 'running' ? activity.rate(j.id, now) : 0,
        nodes: top,
        blocked: driver.hub.blockedReason(j.id),
        createdAt: j.createdAt,
        finishedAt: j.finishedAt,
        work: w.kind === 'function' ? w.exportName : w.kind === 'command' ? w.argv.join(' ') : 'noop',
      }
    })
  }
}

/** One member's advertised flows and how long ago its advert arrived. */
export interface RemoteFlows {
  peer: string
  flows: readonly AdvertFlow[]
  ageMs: number
}

/** Edges sent to the page at most (the busiest); 100 members that each name 16 partners make up to 1,600. */
export const MESH_FLOWS_MAX = 100

/**
 * Merges this node's flows with every member's view into one edge per
 * (kind, from, to): both ends of a steal report it, so the counts are not
 * added but the larger taken, the latest time kept, and the reporters named.
 * Flows older than the window (by when their advert arrived here, so clock
 * skew does not matter) are left out.
 */
export function meshFlows(
  self: string,
  local: readonly Flow[],
  remote: readonly RemoteFlows[],
  now: number,
  max = MESH_FLOWS_MAX,
): FlowRow[] {
  const edges = new Map<string, FlowRow>()
  const add = (from: string, to: string, kind: FlowRow['kind'], tasks: number, agoMs: number, by: string) => {
    if (from === to || agoMs > FLOW_WINDOW_MS + ADVERT_LAG_MS) return
    const key = `${kind}|${from}|${to}`
    const e = edges.get(key)
    if (e === undefined) {
      edges.set(key, { from, to, kind, tasks, agoMs, seenBy: [by] })
      return
    }
    e.tasks = Math.max(e.tasks, tasks)
    e.agoMs = Math.min(e.agoMs, agoMs)
    if (!e.seenBy.includes(by)) e.seenBy.push(by)
  }
  for (const f of local) add(f.from, f.to, f.kind, f.tasks, Math.max(0, now - f.lastAt), self)
  for (const r of remote) {
    for (const f of r.flows) {
      if (f.out) add(r.peer, f.peer, f.kind, f.tasks, r.ageMs + f.agoMs, r.peer)
      else add(f.peer, r.peer, f.kind, f.tasks, r.ageMs + f.agoMs, r.peer)
    }
  }
  return [...edges.values()].sort((a, b) => b.tasks - a.tasks || a.agoMs - b.agoMs).slice(0, max)
}

/** How stale a member's advert may be and its flows still count (a few heartbeats). */
const ADVERT_LAG_MS = 5_000

/** Runs in columns (see RunColumns): jobs and nodes named once per tick, times relative to `now`. */
export function runColumns(runs: readonly TaskRun[], now: number): RunColumns {
  const jobs = new Map<string, number>()
  const nodes = new Map<string, number>()
  const out: number[] = new Array(runs.length * RUN_FIELDS)
  let k = 0
  for (const r of runs) {
    let j = jobs.get(r.job)
    if (j === undefined) {
      j = jobs.size
      jobs.set(r.job, j)
    }
    let n = nodes.get(r.node)
    if (n === undefined) {
      n = nodes.size
      nodes.set(r.node, n)
    }
    out[k++] = j
    out[k++] = r.index
    out[k++] = n
    out[k++] = Math.round(now - r.start)
    out[k++] = Math.round(r.end - r.start)
    out[k++] = r.ok ? 1 : 0
  }
  return { jobs: [...jobs.keys()], nodes: [...nodes.keys()], runs: out }
}

/** A node's policy state from its advert: paused (owner policy holds its slots), closed, restricted, open. */
function policyOf(a: SchedulerAdvert): { policy: string; policyNote: string } {
  const acc = a.accepts
  if (acc !== undefined && !acc.foreign)
    return { policy: 'closed', policyNote: acc.reason || 'no foreign tasks' }
  if (a.freeSlots === 0 && a.running < a.slots)
    return { policy: 'paused', policyNote: 'owner policy holds its slots (idle-only, hours or CPU share)' }
  if (acc === undefined) return { policy: 'open', policyNote: 'accepts every task' }
  const limits: string[] = []
  if (!acc.function.all) limits.push(`functions from ${acc.function.peers.length} owners`)
  if (!acc.command.all) limits.push(`commands from ${acc.command.peers.length} owners`)
  if (!acc.gpu.all) limits.push(`GPU tasks from ${acc.gpu.peers.length} owners`)
  return limits.length === 0
    ? { policy: 'open', policyNote: 'accepts every task' }
    : { policy: 'restricted', policyNote: `only ${limits.join(', ')}` }
}

function offlineRow(peer: string, agoMs: number | null): MemberRow {
  return {
    peer,
    self: false,
    online: false,
    slots: 0,
    busy: 0,
    freeForOthers: 0,
    ready: 0,
    gpus: 0,
    gpusFree: 0,
    memoryTotalMB: 0,
    memoryFreeMB: 0,
    load1: 0,
    policy: 'offline',
    policyNote: agoMs === null ? 'never seen by this node' : 'no adverts',
    advertAgeMs: agoMs,
    pingMs: null,
    version: '',
  }
}
