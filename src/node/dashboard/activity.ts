/**
 * What the dashboard shows that no table in the daemon keeps: a window of
 * recent task runs (the task stream), steals and pushes between nodes (who
 * takes work from whom), per-job rates, the nodes that ran each job, failed
 * tasks with their errors, and when each peer was last heard of. Fed by the
 * driver's observer (every scheduler step); bounded everywhere.
 */
import { type AdvertFlow, MAX_ADVERT_FLOWS } from '../../protocol/advert/codec.ts'
import type { Command, FinishedRun, JobId, PeerKey, SchedulerEvent } from '../../scheduler/types.ts'

/** One run in the task stream. Times are ms since the epoch. */
export interface TaskRun {
  job: JobId
  index: number
  node: PeerKey
  start: number
  end: number
  ok: boolean
}

/** Tasks that moved from one node to another in the flow window. */
export interface Flow {
  from: PeerKey
  to: PeerKey
  /** steal: `to` stole from `from`; push: `from` (an owner) pushed to `to`. */
  kind: 'steal' | 'push'
  tasks: number
  lastAt: number
}

export interface Failure {
  index: number
  attempt: number
  node: PeerKey
  status: string
  error: string
  at: number
}

export interface JobActivity {
  /** Results per node (who ran how much). */
  byNode: Map<PeerKey, number>
  /** Result times in the rate window (for tasks/s). */
  recent: number[]
  failures: Failure[]
  failuresTotal: number
}

/** Runs kept for the stream (the page windows them further). */
export const STREAM_MAX = 50_000
export const FLOW_WINDOW_MS = 10_000
const RATE_WINDOW_MS = 5_000
const FAILURES_KEPT = 1000
const JOBS_KEPT = 200
/** Jobs whose owner is remembered for the runs that end here (the oldest is forgotten first). */
const OWNERS_KEPT = 10_000

export class Activity {
  private readonly self: PeerKey
  /** Ring buffer of runs; `seq` counts every run ever added. */
  private readonly runs: (TaskRun | undefined)[] = new Array(STREAM_MAX)
  seq = 0
  private readonly flows = new Map<string, Flow>()
  readonly jobs = new Map<JobId, JobActivity>()
  readonly lastSeen = new Map<PeerKey, number>()
  /**
   * Owners of the jobs whose tasks started here, learnt from run-task commands: one entry per
   * job, not per run (a string key and a map entry per run: about 0.5-1 us a run).
   */
  private readonly owners = new Map<JobId, PeerKey>()

  constructor(self: PeerKey) {
    this.self = self
  }

  /** The driver's observer. */
  step(e: SchedulerEvent, commands: readonly Command[]): void {
    switch (e.type) {
      case 'advert-received':
        this.lastSeen.set(e.peer, e.at)
        break
      case 'steal-granted':
        if (e.batch.tasks.length > 0) this.flow(e.from, this.self, 'steal', e.batch.tasks.length, e.at)
        break
      case 'task-finished':
        this.ran(e, e.at)
        break
      case 'tasks-finished':
        for (const f of e.finished) this.ran(f, e.at)
        break
    }
    for (const c of commands) this.command(e, c)
  }

  /**
   * Another owner's run enters the stream when it ends here (its result goes to its owner, not
   * to us), timed like every run in the stream: from its end back by its own run time. Runs of
   * jobs owned here enter with their results (persist-results), wherever they ran.
   */
  private ran({ task, outcome }: FinishedRun, at: number): void {
    const owner = this.owners.get(task.job)
    if (owner === undefined || owner === this.self) return
    this.add({
      job: task.job,
      index: task.index,
      node: this.self,
      start: at - Math.max(0, outcome.durationMs),
      end: at,
      ok: outcome.status === 'ok',
    })
  }

  private command(e: SchedulerEvent, c: Command): void {
    switch (c.type) {
      case 'run-task':
        if (!this.owners.has(c.job.id)) {
          if (this.owners.size >= OWNERS_KEPT) this.owners.delete(this.owners.keys().next().value!)
          this.owners.set(c.job.id, c.job.owner)
        }
        return
      case 'reply-steal':
        if (c.batch.tasks.length > 0) this.flow(this.self, c.to, 'steal', c.batch.tasks.length, e.at)
        return
      case 'push-batch':
        this.flow(this.self, c.to, 'push', c.batch.tasks.length, e.at)
        return
      case 'persist-results':
        for (const r of c.results) {
          const ok = r.outcome.status === 'ok'
          const ms = Math.max(0, r.outcome.durationMs)
          this.add({ job: r.job, index: r.index, node: r.ranOn, start: e.at - ms, end: e.at, ok })
          const j = this.job(r.job)
          j.byNode.set(r.ranOn, (j.byNode.get(r.ranOn) ?? 0) + 1)
          j.recent.push(e.at)
          if (!ok && r.outcome.status !== 'ok') {
            j.failuresTotal++
            if (j.failures.length < FAILURES_KEPT)
              j.failures.push({
                index: r.index,
                attempt: r.attempt,
                node: r.ranOn,
                status: r.outcome.status,
                error: r.outcome.error.slice(0, 2000),
                at: e.at,
              })
          }
        }
        return
    }
  }

  private job(id: JobId): JobActivity {
    let j = this.jobs.get(id)
    if (j === undefined) {
      j = { byNode: new Map(), recent: [], failures: [], failuresTotal: 0 }
      this.jobs.set(id, j)
      if (this.jobs.size > JOBS_KEPT) this.jobs.delete(this.jobs.keys().next().value!)
    }
    return j
  }

  private add(run: TaskRun): void {
    this.runs[this.seq % STREAM_MAX] = run
    this.seq++
  }

  private flow(from: PeerKey, to: PeerKey, kind: Flow['kind'], tasks: number, at: number): void {
    const key = `${kind}|${from}|${to}`
    const f = this.flows.get(key)
    if (f === undefined || at - f.lastAt > FLOW_WINDOW_MS)
      this.flows.set(key, { from, to, kind, tasks, lastAt: at })
    else {
      f.tasks += tasks
      f.lastAt = at
    }
  }

  /** Runs added after `since` (a `seq` value), at most `max` of the newest; and the new `seq`. */
  runsSince(since: number, max: number): { runs: TaskRun[]; seq: number; skipped: number } {
    const from = Math.max(since, this.seq - STREAM_MAX, this.seq - max)
    const runs: TaskRun[] = []
    for (let i = from; i < this.seq; i++) runs.push(this.runs[i % STREAM_MAX]!)
    return { runs, seq: this.seq, skipped: from - Math.max(since, this.seq - STREAM_MAX) }
  }

  /** Flows seen in the last window. */
  recentFlows(now: number): Flow[] {
    const out: Flow[] = []
    for (const [k, f] of this.flows) {
      if (now - f.lastAt > FLOW_WINDOW_MS) this.flows.delete(k)
      else out.push(f)
    }
    return out
  }

  /**
   * This node's part of "who steals from whom" for its capacity advert: the
   * flows it took part in over the window, busiest first, at most
   * MAX_ADVERT_FLOWS (other members merge them into a mesh-wide picture).
   */
  advertFlows(now: number): AdvertFlow[] {
    const out: AdvertFlow[] = []
    for (const f of this.recentFlows(now)) {
      const sent = f.from === this.self
      if (!sent && f.to !== this.self) continue
      const peer = sent ? f.to : f.from
      if (peer === this.self) continue
      out.push({
        peer,
        kind: f.kind,
        out: sent,
        tasks: Math.min(f.tasks, 1 << 30),
        agoMs: Math.max(0, now - f.lastAt),
      })
    }
    return out.sort((a, b) => b.tasks - a.tasks || a.agoMs - b.agoMs).slice(0, MAX_ADVERT_FLOWS)
  }

  /** Results per second of a job over the rate window. */
  rate(id: JobId, now: number): number {
    const j = this.jobs.get(id)
    if (j === undefined) return 0
    let drop = 0
    while (drop < j.recent.length && now - j.recent[drop] > RATE_WINDOW_MS) drop++
    if (drop > 0) j.recent.splice(0, drop)
    return j.recent.length / (RATE_WINDOW_MS / 1000)
  }
}
