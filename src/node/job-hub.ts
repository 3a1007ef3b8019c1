/**
 * The owner's side of jobs outside the scheduler: writes outcomes to the
 * store in batches (one transaction per event-loop turn, before any ack that
 * depends on them), and tells subscribers (the API's event streams) about
 * results, progress, blocked placement and the end of each job.
 */
import { EventEmitter } from 'node:events'
import type { JobId, JobProgress, JobStatus, TaskResult } from '../scheduler/types.ts'
import type { JobStore, StoredResult } from './store.ts'

export type JobEvent =
  /** Outcomes just written, in one batch per job per store flush. */
  | { type: 'results'; results: StoredResult[] }
  | { type: 'progress'; progress: JobProgress }
  | { type: 'blocked'; reason: string }
  | { type: 'finished'; status: JobStatus; progress: JobProgress }

const PROGRESS_EVERY_MS = 100

type Op =
  | { kind: 'results'; results: TaskResult[] }
  | { kind: 'finish'; job: JobId; status: JobStatus; progress: JobProgress }

export class JobHub {
  readonly store: JobStore
  private readonly events = new EventEmitter()
  private ops: Op[] = []
  private flushing?: PromiseWithResolvers<void>
  private readonly blocked = new Map<JobId, string>()
  private readonly progress = new Map<JobId, JobProgress>()
  private readonly progressTimers = new Map<JobId, NodeJS.Timeout>()

  constructor(store: JobStore) {
    this.store = store
    this.events.setMaxListeners(0)
  }

  /** Outcomes to write; resolved once they are on disk. */
  persist(results: TaskResult[]): Promise<void> {
    this.ops.push({ kind: 'results', results })
    return this.scheduleFlush()
  }

  finish(job: JobId, status: JobStatus, progress: JobProgress): void {
    this.ops.push({ kind: 'finish', job, status, progress })
    void this.scheduleFlush()
  }

  /** Resolves after everything queued so far is written. */
  flushed(): Promise<void> {
    return this.flushing?.promise ?? Promise.resolve()
  }

  /** Progress reaches subscribers at most every PROGRESS_EVERY_MS per job; the latest counts win. */
  setProgress(progress: JobProgress): void {
    const pending = this.progress.has(progress.job) && this.progressTimers.has(progress.job)
    this.progress.set(progress.job, progress)
    if (pending) return
    this.progressTimers.set(
      progress.job,
      setTimeout(() => {
        this.progressTimers.delete(progress.job)
        const latest = this.progress.get(progress.job)
        if (latest) this.events.emit(progress.job, { type: 'progress', progress: latest } satisfies JobEvent)
      }, PROGRESS_EVERY_MS),
    )
  }

  setBlocked(job: JobId, reason: string): void {
    if (reason) this.blocked.set(job, reason)
    else this.blocked.delete(job)
    this.events.emit(job, { type: 'blocked', reason } satisfies JobEvent)
  }

  blockedReason(job: JobId): string {
    return this.blocked.get(job) ?? ''
  }

  liveProgress(job: JobId): JobProgress | undefined {
    return this.progress.get(job)
  }

  subscribe(job: JobId, listener: (e: JobEvent) => void): () => void {
    this.events.on(job, listener)
    return () => this.events.off(job, listener)
  }

  private scheduleFlush(): Promise<void> {
    if (!this.flushing) {
      this.flushing = Promise.withResolvers<void>()
      setImmediate(() => this.flush())
    }
    return this.flushing.promise
  }

  private flush(): void {
    const ops = this.ops
    const done = this.flushing!
    this.ops = []
    this.flushing = undefined
    try {
      const results = ops.flatMap((op) => (op.kind === 'results' ? op.results : []))
      if (results.length > 0) this.store.saveResults(results)
      for (const op of ops) {
        if (op.kind === 'finish') this.store.finishJob(op.job, op.status, Date.now())
      }
      done.resolve()
    } catch (err) {
      done.reject(err)
      return
    }
    const byJob = new Map<JobId, StoredResult[]>()
    for (const op of ops) {
      if (op.kind !== 'results') continue
      for (const r of op.results) {
        const list = byJob.get(r.job)
        if (list) list.push(toStored(r))
        else byJob.set(r.job, [toStored(r)])
      }
    }
    for (const [job, results] of byJob) this.events.emit(job, { type: 'results', results } satisfies JobEvent)
    for (const op of ops) {
      if (op.kind === 'finish') {
        this.progress.delete(op.job)
        clearTimeout(this.progressTimers.get(op.job))
        this.progressTimers.delete(op.job)
        this.blocked.delete(op.job)
        this.events.emit(op.job, {
          type: 'finished',
          status: op.status,
          progress: op.progress,
        } satisfies JobEvent)
      }
    }
  }
}

export function toStored(r: TaskResult): StoredResult {
  const o = r.outcome
  return {
    index: r.index,
    ok: o.status === 'ok',
    value: o.status === 'ok' ? o.value : null,
    error: o.status === 'ok' ? null : o.error,
    stack: o.status === 'threw' ? (o.stack ?? null) : null,
    ranOn: r.ranOn,
    durationMs: o.durationMs,
  }
}
