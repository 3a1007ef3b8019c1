/**
 * The owner's side of jobs outside the scheduler: writes outcomes to the
 * store in batches (one transaction per event-loop turn, before any ack that
 * depends on them), and tells subscribers (the API's event streams) about
 * results, progress, blocked placement and the end of each job.
 */
import { EventEmitter } from 'node:events'
import { GridnodeError } from '../errors.ts'
import type { JobId, JobProgress, JobStatus, TaskResult } from '../scheduler/types.ts'
import type { JobStore, StoredResult } from './store.ts'

/** The job store could not write (disk full, I/O error): nothing queued was acknowledged; it is retried. */
export class StorageError extends GridnodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GN_STORAGE', message, options)
  }
}

/** What `gridnode status` shows about the store. */
export interface StorageHealth {
  ok: boolean
  /** The last write error while not ok. */
  error?: string
  /** When writes started failing (ms since the epoch). */
  since?: number
  /** Failed attempts since then. */
  failures?: number
  /** Outcomes waiting to be written. */
  pendingResults: number
}

/** Retries of a failed flush back off from RETRY_MIN_MS to RETRY_MAX_MS (well under the result protocol's 30 s). */
export const RETRY_MIN_MS = 250
export const RETRY_MAX_MS = 5000

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
  private failure?: { error: string; since: number; failures: number }
  private retryMs = RETRY_MIN_MS

  private readonly retryMinMs: number
  private readonly retryMaxMs: number

  constructor(store: JobStore, options: { retryMinMs?: number; retryMaxMs?: number } = {}) {
    this.store = store
    this.events.setMaxListeners(0)
    this.retryMinMs = options.retryMinMs ?? RETRY_MIN_MS
    this.retryMaxMs = options.retryMaxMs ?? RETRY_MAX_MS
    this.retryMs = this.retryMinMs
  }

  /**
   * Outcomes to write; resolved once they are on disk, rejected (StorageError)
   * if the write failed. Failed writes stay queued and are retried: once they
   * succeed, every outcome is in the store exactly once.
   */
  persist(results: TaskResult[]): Promise<void> {
    this.ops.push({ kind: 'results', results })
    return this.scheduleFlush()
  }

  finish(job: JobId, status: JobStatus, progress: JobProgress): void {
    this.ops.push({ kind: 'finish', job, status, progress })
    void this.scheduleFlush()
  }

  /**
   * Resolves after everything queued so far is written; rejects with
   * StorageError if that write failed (then acknowledge nothing: the sender
   * resends, and the queued writes are retried).
   */
  flushed(): Promise<void> {
    return this.flushing?.promise ?? Promise.resolve()
  }

  /** Whether the store is taking writes; for status. */
  storage(): StorageHealth {
    const pendingResults = this.ops.reduce((n, op) => n + (op.kind === 'results' ? op.results.length : 0), 0)
    if (this.failure === undefined) return { ok: true, pendingResults }
    return { ok: false, ...this.failure, pendingResults }
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
        if (latest) this.emit(progress.job, { type: 'progress', progress: latest })
      }, PROGRESS_EVERY_MS),
    )
  }

  setBlocked(job: JobId, reason: string): void {
    if (reason) this.blocked.set(job, reason)
    else this.blocked.delete(job)
    this.emit(job, { type: 'blocked', reason })
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

  private scheduleFlush(delayMs = 0): Promise<void> {
    if (!this.flushing) {
      const flushing = Promise.withResolvers<void>()
      // A failed flush that nobody awaits (finish, a retry) must not become an unhandled rejection.
      flushing.promise.catch(() => {})
      this.flushing = flushing
      const run = () => this.flushSafely()
      if (delayMs > 0) setTimeout(run, delayMs).unref?.()
      else setImmediate(run)
    }
    return this.flushing.promise
  }

  /** A failure of the subscribers must not leave the flush's promise pending. */
  private flushSafely(): void {
    const done = this.flushing
    try {
      this.flush()
    } catch (err) {
      done?.reject(err)
    }
  }

  private flush(): void {
    const ops = this.ops
    const done = this.flushing!
    this.ops = []
    this.flushing = undefined
    try {
      const results = ops.flatMap((op) => (op.kind === 'results' ? op.results : []))
      const now = Date.now()
      const finished = ops.flatMap((op) =>
        op.kind === 'finish' ? [{ id: op.job, status: op.status, at: now }] : [],
      )
      if (results.length > 0 || finished.length > 0) this.store.saveBatch(results, finished)
    } catch (err) {
      this.failed(ops, done, err)
      return
    }
    this.failure = undefined
    this.retryMs = this.retryMinMs
    done.resolve()
    this.announce(ops)
  }

  /** Keeps the ops queued (ahead of newer ones), rejects their waiters, and retries later. */
  private failed(ops: Op[], done: PromiseWithResolvers<void>, err: unknown): void {
    this.ops = ops.concat(this.ops)
    const message = (err as { message?: string })?.message ?? String(err)
    this.failure = {
      error: message,
      since: this.failure?.since ?? Date.now(),
      failures: (this.failure?.failures ?? 0) + 1,
    }
    const closed = this.store.closed
    done.reject(
      new StorageError(
        `cannot write to the job store: ${message}${closed ? ' (store closed)' : '; nothing acknowledged, will retry'}`,
        { cause: err },
      ),
    )
    if (closed) return
    const delay = this.retryMs
    this.retryMs = Math.min(this.retryMaxMs, this.retryMs * 2)
    void this.scheduleFlush(delay)
  }

  /** Tells subscribers what was just written. A failing subscriber is its own problem, not the store's. */
  private announce(ops: Op[]): void {
    const byJob = new Map<JobId, StoredResult[]>()
    for (const op of ops) {
      if (op.kind !== 'results') continue
      for (const r of op.results) {
        const list = byJob.get(r.job)
        if (list) list.push(toStored(r))
        else byJob.set(r.job, [toStored(r)])
      }
    }
    for (const [job, results] of byJob) this.emit(job, { type: 'results', results })
    for (const op of ops) {
      if (op.kind === 'finish') {
        this.progress.delete(op.job)
        clearTimeout(this.progressTimers.get(op.job))
        this.progressTimers.delete(op.job)
        this.blocked.delete(op.job)
        this.emit(op.job, { type: 'finished', status: op.status, progress: op.progress })
      }
    }
  }

  /** Emits to a job's subscribers; one that throws (a closed response, a bug) is reported, not propagated. */
  private emit(job: JobId, event: JobEvent): void {
    for (const listener of this.events.listeners(job) as Array<(e: JobEvent) => void>) {
      try {
        listener(event)
      } catch (err) {
        this.onListenerError(err, job)
      }
    }
  }

  /** Where subscriber failures go; the daemon may set a logger. Default: a warning on stderr. */
  onListenerError: (err: unknown, job: JobId) => void = (err, job) => {
    process.emitWarning(`job ${job}: an event subscriber failed: ${(err as Error)?.stack ?? String(err)}`)
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
    ...(o.status === 'ok' && o.outputs && o.outputs.length > 0 ? { outputs: o.outputs } : {}),
  }
}
