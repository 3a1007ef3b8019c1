/**
 * Tail backups. When this node has nothing queued and a slot idle, and one of
 * its jobs has nothing waiting but tasks held elsewhere for longer than
 * backupAfterFactor × the job's mean task time (at least
 * backupMinMs, once a few results are in), it runs one local copy of
 * the longest-held such task, same attempt. The first result wins; the
 * owner cancels or drops the other copy.
 */
import type { Holder } from './holder.ts'
import { meanTaskMs, type OwnedJob } from './job-table.ts'
import type { Runtime } from './runtime.ts'

/** Results a job needs before its mean task time drives backups. */
export const BACKUP_MIN_RESULTS = 3

export class TailBackups {
  /** Jobs in their tail: nothing waiting, tasks held elsewhere, a known mean. */
  private readonly tail = new Set<OwnedJob>()

  /** Re-evaluates the jobs whose counts changed. */
  update(changed: Iterable<OwnedJob>): void {
    for (const job of changed) {
      const eligible =
        job.active && job.counts.waiting === 0 && job.remoteHeld.size > 0 && job.results >= BACKUP_MIN_RESULTS
      if (eligible) this.tail.add(job)
      else this.tail.delete(job)
    }
  }

  forget(job: OwnedJob): void {
    this.tail.delete(job)
  }

  /** Starts at most one backup; returns when the next one may become due, if any. */
  run(rt: Runtime, holder: Holder): number | undefined {
    let next: number | undefined
    let started = false
    for (const job of this.tail) {
      const mean = meanTaskMs(job) ?? 0
      const after = Math.max(rt.s.backupAfterFactor * mean, rt.s.backupMinMs)
      for (const t of job.remoteHeld.values()) {
        if (t.backedUp || t.desc === undefined) continue
        const due = t.heldSince + after
        if (due <= rt.now && !started && holder.startBackup(job.spec, t.desc)) {
          t.backedUp = true
          started = true
          rt.stats.backups++
          continue
        }
        if (due > rt.now && (next === undefined || due < next)) next = due
        break
      }
    }
    return next
  }
}
