/**
 * The owner's task lifecycle: how a task of a job owned here goes from
 * waiting to ready, through retries and new attempts, to done or failed,
 * and how a job finishes. The first final result of a task wins; errors
 * count only from the current attempt. Owner (owner.ts) adds the events.
 */
import { BoundedMap, getOrCreate, ownBytes } from './collections.ts'
import { Custody } from './custody.ts'
import { assertNever } from './errors.ts'
import type { Holder } from './holder.ts'
import { descriptor, type OwnedJob, type OwnedTask, progressOf } from './job-table.ts'
import type { Runtime } from './runtime.ts'
import { FinishedStories } from './story.ts'
import { TailBackups } from './tail.ts'
import type { JobId, JobProgress, JobStatus, PeerKey, TaskResult } from './types.ts'

export interface Finished {
  status: JobStatus
  progress: JobProgress
}

export const EMPTY = new Uint8Array(0)
/** Finished jobs remembered (duplicates counted, cancelled jobs named in lease answers). */
const FINISHED_MEMORY = 10_000

export class OwnerLifecycle {
  readonly jobs = new Map<JobId, OwnedJob>()
  protected readonly rt: Runtime
  protected readonly holder: Holder
  protected readonly custody: Custody
  protected readonly finalStatus = new Map<OwnedJob, JobStatus>()
  /** Finished and cancelled jobs, most recent first forgotten last. */
  protected readonly finished = new BoundedMap<JobId, Finished>(FINISHED_MEMORY)
  protected readonly blocked = new Set<OwnedJob>()
  protected readonly tail = new TailBackups()
  /** Stories of finished jobs, newest kept (for `gridnode why`). */
  readonly stories = new FinishedStories()

  constructor(rt: Runtime, holder: Holder) {
    this.rt = rt
    this.holder = holder
    this.custody = new Custody(rt)
  }

  protected leaveWaiting(t: OwnedTask): void {
    if (t.leftWaiting) return
    t.leftWaiting = true
    for (const d of t.deps) {
      const dep = t.job.tasks.get(d)
      if (dep === undefined) continue
      dep.dependentsLeft--
      if (dep.dependentsLeft <= 0) dep.value = undefined
    }
  }

  /** Dependencies done: build the descriptor and queue it here (or hold it in doubt after a restore). */
  protected ready(t: OwnedTask, mode: 'local' | 'doubt'): void {
    const depValues = t.deps.map((d) => t.job.tasks.get(d)?.value ?? EMPTY)
    this.leaveWaiting(t)
    t.desc = descriptor(t, depValues)
    t.input = undefined
    this.custody.setState(t, mode)
    if (mode === 'local') this.holder.hold(t.job.spec, t.desc)
  }

  /**
   * A new attempt, queued here; `why` goes into the task's story. A retry after a failed run
   * (`retry`) may then be placed on another node than the ones it failed on (placeRetry).
   */
  protected requeue(t: OwnedTask, why: string, retry = false): void {
    if (t.desc === undefined) return
    t.attempt = Math.max(t.attempt + 1, t.job.attemptBase)
    this.rt.stats.requeued++
    t.desc = { ...t.desc, attempt: t.attempt }
    this.custody.setState(t, 'local')
    this.custody.note(t, why)
    this.holder.hold(t.job.spec, t.desc)
    if (retry) this.placeRetry(t)
  }

  /** Owner: sends a retried task to a node it has not failed on, when that is better than here. */
  protected placeRetry(_t: OwnedTask): void {}

  /** A run of `t` failed on `node`: remembered for the task (retries go elsewhere) and the job. */
  protected ranBadly(t: OwnedTask, node: PeerKey | undefined): void {
    if (node === undefined) return
    t.failedOn ??= []
    if (!t.failedOn.includes(node)) t.failedOn.push(node)
    getOrCreate(t.job.record, node, () => ({ ok: 0, failed: 0 })).failed++
  }

  /** The holder died, went silent, or the worker crashed: retry or fail as poison. */
  protected infraFailure(t: OwnedTask, error: string, crashed: boolean, r?: TaskResult): void {
    t.failures++
    t.lastError = error
    t.lastCrashed = crashed
    this.ranBadly(t, r?.ranOn ?? t.holder ?? (t.state === 'local' ? this.rt.self : undefined))
    if (t.failures < t.job.spec.maxAttempts) {
      this.requeue(t, `${error} (infrastructure failure ${t.failures} of ${t.job.spec.maxAttempts})`, true)
      return
    }
    const how = crashed ? 'crashed its worker' : 'failed on infrastructure'
    const poison = `poison: ${how} ${t.failures} times: ${error}`
    const ranOn = r?.ranOn ?? t.holder ?? this.rt.self
    const durationMs = r?.outcome.durationMs ?? 0
    this.failCascade(t, {
      job: t.job.spec.id,
      index: t.index,
      attempt: t.attempt,
      ranOn,
      outcome: { status: 'crashed', error: poison, durationMs },
    })
  }

  protected finalize(t: OwnedTask, state: 'done' | 'failed', r: TaskResult): void {
    this.rt.persist(r)
    this.leaveWaiting(t)
    this.custody.setState(t, state)
    this.custody.note(t, outcomeNote(r), r.ranOn)
    t.desc = undefined
    t.input = undefined
    this.holder.dropCopies(t.job.spec.id, t.index)
  }

  protected done(t: OwnedTask, r: TaskResult, value: Uint8Array): void {
    this.finalize(t, 'done', r)
    if (t.dependentsLeft > 0) t.value = ownBytes(value) // kept while dependents wait
    for (const d of t.dependents) {
      d.depsLeft--
      if (d.state === 'waiting' && d.depsLeft === 0) this.ready(d, 'local')
    }
    this.maybeFinish(t.job)
  }

  protected failCascade(first: OwnedTask, r: TaskResult): void {
    const stack: Array<[OwnedTask, TaskResult]> = [[first, r]]
    for (let e = stack.pop(); e !== undefined; e = stack.pop()) {
      const [t, result] = e
      if (t.state === 'done' || t.state === 'failed') continue
      this.finalize(t, 'failed', result)
      for (const d of t.dependents) {
        if (d.state === 'waiting') stack.push([d, this.synthetic(d, `dependency ${t.index} failed`)])
      }
    }
    this.maybeFinish(first.job)
  }

  protected synthetic(t: OwnedTask, error: string): TaskResult {
    return {
      job: t.job.spec.id,
      index: t.index,
      attempt: t.attempt,
      ranOn: this.rt.self,
      outcome: { status: 'rejected', error, durationMs: 0 },
    }
  }

  protected maybeFinish(job: OwnedJob): void {
    if (!job.active || job.counts.done + job.counts.failed < job.tasks.size) return
    this.finishJob(job, job.counts.failed > 0 ? 'failed' : 'done')
  }

  protected finishJob(job: OwnedJob, status: JobStatus): void {
    job.active = false
    this.jobs.delete(job.spec.id)
    this.blocked.delete(job)
    this.tail.forget(job)
    this.finalStatus.set(job, status)
    this.finished.set(job.spec.id, { status, progress: progressOf(job, 0) })
    this.stories.keep(job.spec.id, job.story)
    this.custody.dirty.add(job)
  }

  /** One result (from a holder, or from this node's own runs). First final result wins. */
  protected apply(r: TaskResult): void {
    const job = this.jobs.get(r.job)
    if (job === undefined) {
      const gone = this.finished.get(r.job)
      if (gone !== undefined && gone.status !== 'cancelled') this.rt.stats.duplicateResults++
      return
    }
    const t = job.tasks.get(r.index)
    if (t === undefined || t.state === 'waiting') return
    if (t.state === 'done' || t.state === 'failed') {
      this.rt.stats.duplicateResults++
      return
    }
    // Errors count only from the current attempt (whoever ran it: custody may have moved
    // between holders before the thief's lease arrived); late or duplicated ones are dropped.
    const current = t.state === 'doubt' || r.attempt === t.attempt
    const o = r.outcome
    switch (o.status) {
      case 'ok':
        getOrCreate(job.record, r.ranOn, () => ({ ok: 0, failed: 0 })).ok++
        this.record(job, r)
        this.done(t, r, o.value)
        return
      case 'rejected':
        this.record(job, r)
        this.failCascade(t, r)
        return
      case 'threw':
      case 'timeout':
        if (!current) return
        this.ranBadly(t, r.ranOn)
        if (t.userErrors < job.spec.retries) {
          t.userErrors++
          t.lastError = o.error
          this.requeue(t, `${o.status}: ${o.error} (retry ${t.userErrors} of ${job.spec.retries})`, true)
          return
        }
        this.record(job, r)
        this.failCascade(t, r)
        return
      case 'crashed':
        if (!current) return
        this.infraFailure(t, o.error, true, r)
        return
      case 'returned':
        // Handed back unrun (the holder's policy or owner policy): infrastructure, not counted.
        if (!current || t.state === 'local') return
        t.lastError = o.error
        this.rt.stats.handedBack++
        this.requeue(t, `handed back by ${r.ranOn}: ${o.error}`)
        return
      default:
        assertNever(o)
    }
  }

  protected record(job: OwnedJob, r: TaskResult): void {
    job.results++
    job.durationSum += Math.max(0, r.outcome.durationMs)
    job.nodes.add(r.ranOn)
  }
}

/** How a run ended, for the task's story: "ok in 12 ms", "threw: …". */
function outcomeNote(r: TaskResult): string {
  const o = r.outcome
  const ms = `${Math.round(o.durationMs)} ms`
  return o.status === 'ok' ? `ok in ${ms}` : `${o.status} after ${ms}: ${o.error}`
}
