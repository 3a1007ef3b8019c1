/**
 * Tail backups. When one of this node's jobs has nothing waiting and a task
 * has run longer than backupAfterFactor × the job's mean task time (at least
 * backupMinMs, once a few results are in), one more copy of it runs, same
 * attempt; the first result wins and the owner cancels or drops the other.
 *
 * - A straggler held elsewhere: when this node has nothing queued and a slot
 *   idle, it runs the copy itself (the longest-held such task first).
 * - A straggler running here, on the owner: the copy is pushed to an idle
 *   peer that fits it (the owner's `pushBackup`), so a slow owner does not
 *   hold up its own job while other nodes sit idle.
 */
import type { Holder } from './holder.ts'
import { meanTaskMs, type OwnedJob, type OwnedTask } from './job-table.ts'
import type { Runtime } from './runtime.ts'

/** Results a job needs before its mean task time drives backups. */
export const BACKUP_MIN_RESULTS = 3

export class TailBackups {
  /** Jobs in their tail: nothing waiting, tasks held elsewhere, a known mean. */
  private readonly tail = new Set<OwnedJob>()
  /** Jobs in their tail with tasks held here (queued or running on this node). */
  private readonly localTail = new Set<OwnedJob>()
  /** When a task of a job in its tail was first seen running here (its run started no later). */
  private readonly seenRunning = new Map<OwnedTask, number>()

  /** Re-evaluates the jobs whose counts changed. */
  update(changed: Iterable<OwnedJob>): void {
    for (const job of changed) {
      const known = job.active && job.counts.waiting === 0 && job.results >= BACKUP_MIN_RESULTS
      if (known && job.remoteHeld.size > 0) this.tail.add(job)
      else this.tail.delete(job)
      if (known && job.counts.local > 0) this.localTail.add(job)
      else this.dropLocal(job)
    }
  }

  forget(job: OwnedJob): void {
    this.tail.delete(job)
    this.dropLocal(job)
  }

  private dropLocal(job: OwnedJob): void {
    if (!this.localTail.delete(job)) return
    for (const t of this.seenRunning.keys()) if (t.job === job) this.seenRunning.delete(t)
  }

  private after(rt: Runtime, job: OwnedJob): number {
    return Math.max(rt.s.backupAfterFactor * (meanTaskMs(job) ?? 0), rt.s.backupMinMs)
  }

  /** Starts at most one backup here; returns when the next one may become due, if any. */
  run(rt: Runtime, holder: Holder): number | undefined {
    let next: number | undefined
    let started = false
    for (const job of this.tail) {
      const after = this.after(rt, job)
      for (const t of job.remoteHeld.values()) {
        if (t.backedUp || t.desc === undefined) continue
        const due = t.heldSince + after
        if (due <= rt.now && !started && holder.startBackup(job.spec, t.desc)) {
          t.backedUp = true
          started = true
          rt.stats.backups++
          job.backups++
          continue
        }
        if (due > rt.now && (next === undefined || due < next)) next = due
        break
      }
    }
    return next
  }

  /**
   * Stragglers running here: pushes a backup copy of each that is due to a peer `pushBackup`
   * finds (false: none now). Returns when the next one may become due, if any.
   */
  runLocal(
    rt: Runtime,
    holder: Holder,
    jobs: ReadonlyMap<string, OwnedJob>,
    pushBackup: (t: OwnedTask) => boolean,
  ): number | undefined {
    // Tasks still queued here are for idle peers to steal first.
    if (this.localTail.size === 0 || holder.queue.size > 0) return undefined
    let next: number | undefined
    for (const h of holder.runningTasks()) {
      if (!h.own) continue
      const job = jobs.get(h.jobId)
      if (job === undefined || !this.localTail.has(job)) continue
      const t = job.tasks.get(h.index)
      if (t === undefined || t.state !== 'local' || t.backedUp || t.desc === undefined) continue
      let since = this.seenRunning.get(t)
      if (since === undefined) {
        since = rt.now
        this.seenRunning.set(t, since)
      }
      const due = since + this.after(rt, job)
      if (due <= rt.now && pushBackup(t)) {
        t.backedUp = true
        rt.stats.backups++
        job.backups++
        this.seenRunning.delete(t)
        continue
      }
      if (due > rt.now && (next === undefined || due < next)) next = due
    }
    return next
  }
}
