/**
 * Custody bookkeeping for the owner's tasks: every state move goes through
 * setState(), which checks it against the table of legal moves (story.ts),
 * records it in the task's story, keeps the job's counts, the per-holder
 * index (for peer-gone), the job's remote-held order (for tail backups) and
 * the deadline queues (lease, restore grace) in step, and marks the job changed.
 */
import { Fifo, getOrCreate } from './collections.ts'
import { assertNever, invariant } from './errors.ts'
import type { Holder } from './holder.ts'
import {
  HELD_MEMORY,
  heldBefore,
  OWNED_STATES,
  type OwnedJob,
  type OwnedState,
  type OwnedTask,
} from './job-table.ts'
import type { Runtime } from './runtime.ts'
import { legalMove } from './story.ts'
import type { PeerKey } from './types.ts'

interface Deadline {
  readonly task: OwnedTask
  readonly deadline: number
}

export class Custody {
  /** Jobs changed in this handle() call. */
  readonly dirty = new Set<OwnedJob>()
  private readonly rt: Runtime
  private readonly byHolder = new Map<PeerKey, Set<OwnedTask>>()
  private readonly leaseDeadlines = new Fifo<Deadline>()
  private readonly graceDeadlines = new Fifo<Deadline>()

  constructor(rt: Runtime) {
    this.rt = rt
  }

  /** `hop`: for remote, the length of the new holder's custody path (1 = handed by the owner). */
  setState(t: OwnedTask, state: OwnedState, holder?: PeerKey, hop = 1): void {
    const job = t.job
    const from = t.state
    invariant(legalMove(from, state), () => `task ${job.spec.id}/${t.index}: illegal move ${from} → ${state}`)
    const fromNode = from === 'remote' && state === 'remote' ? t.holder : undefined
    if (t.state === 'remote') this.unindex(t)
    job.counts[t.state]--
    job.counts[state]++
    t.state = state
    t.holder = state === 'local' ? this.rt.self : state === 'remote' ? holder : undefined
    t.hop = state === 'remote' ? hop : 0
    this.dirty.add(job)
    const now = this.rt.now
    job.story.add(
      t.index,
      { at: now, cause: this.rt.cause, attempt: t.attempt, from, to: state },
      t.holder,
      fromNode,
    )
    if (state === 'remote' && holder !== undefined) {
      this.remember(t, holder)
      getOrCreate(this.byHolder, holder, () => new Set<OwnedTask>()).add(t)
      job.remoteHeld.set(t.index, t)
      t.heldSince = now
      t.deadline = now + this.rt.s.leaseTimeoutMs
      this.leaseDeadlines.push({ task: t, deadline: t.deadline })
    } else if (state === 'doubt') {
      t.deadline = now + this.rt.s.restoreGraceMs
      this.graceDeadlines.push({ task: t, deadline: t.deadline })
    }
  }

  /** Records that `holder` legitimately holds the task's current attempt. */
  private remember(t: OwnedTask, holder: PeerKey): void {
    if (heldBefore(t, t.attempt, holder)) return
    t.held ??= []
    t.held.push({ attempt: t.attempt, holder })
    if (t.held.length > HELD_MEMORY) t.held.shift()
  }

  /** Why the task's latest move happened (a re-queue's reason, a run's end), and where it ran. */
  note(t: OwnedTask, note: string, node?: PeerKey): void {
    t.job.story.annotate(t.index, note, node)
  }

  /** A lease named the task: push its deadline out. */
  refresh(t: OwnedTask): void {
    const deadline = this.rt.now + this.rt.s.leaseTimeoutMs
    if (deadline === t.deadline) return
    t.deadline = deadline
    this.leaseDeadlines.push({ task: t, deadline })
  }

  /** Forgets a remote task's holder (cancel, or on its way to another state). */
  unindex(t: OwnedTask): void {
    if (t.holder !== undefined) {
      const set = this.byHolder.get(t.holder)
      set?.delete(t)
      if (set?.size === 0) this.byHolder.delete(t.holder)
    }
    t.job.remoteHeld.delete(t.index)
  }

  heldBy(peer: PeerKey): OwnedTask[] {
    return [...(this.byHolder.get(peer) ?? [])]
  }

  /** Remote tasks whose lease ran out by now, and in-doubt tasks whose grace did. */
  expired(): { leases: OwnedTask[]; graces: OwnedTask[] } {
    return { leases: this.due(this.leaseDeadlines, 'remote'), graces: this.due(this.graceDeadlines, 'doubt') }
  }

  private due(q: Fifo<Deadline>, state: OwnedState): OwnedTask[] {
    const out: OwnedTask[] = []
    for (let e = q.peek(); e !== undefined && e.deadline <= this.rt.now; e = q.peek()) {
      q.shift()
      if (live(e, state)) out.push(e.task)
    }
    return out
  }

  nextDeadline(): number | undefined {
    const lease = headOf(this.leaseDeadlines, 'remote')
    const grace = headOf(this.graceDeadlines, 'doubt')
    if (lease === undefined) return grace
    return grace === undefined || lease < grace ? lease : grace
  }

  check(jobs: Iterable<OwnedJob>, holder: Holder): void {
    for (const job of jobs) {
      const id = job.spec.id
      invariant(job.active, `inactive job ${id} still in the table`)
      const counts: Record<OwnedState, number> = {
        waiting: 0,
        local: 0,
        remote: 0,
        doubt: 0,
        done: 0,
        failed: 0,
      }
      for (const t of job.tasks.values()) {
        counts[t.state]++
        this.checkTask(t, holder)
      }
      for (const s of OWNED_STATES) invariant(counts[s] === job.counts[s], `job ${id}: ${s} count is off`)
      const final = job.counts.done + job.counts.failed
      invariant(final <= job.tasks.size, `job ${id}: more final tasks than tasks`)
    }
    for (const [peer, set] of this.byHolder) {
      invariant(set.size > 0, 'empty holder set kept')
      for (const t of set) {
        invariant(t.state === 'remote' && t.holder === peer, `holder index of ${peer} is stale`)
        invariant(t.job.active, `holder index of ${peer} names a task of a finished job`)
      }
    }
  }

  private checkTask(t: OwnedTask, holder: Holder): void {
    const where = `${t.job.spec.id}/${t.index}`
    switch (t.state) {
      case 'local': {
        const h = holder.get(t.job.spec.id, t.index)
        invariant(h !== undefined, `task ${where} held here is neither queued nor running`)
        invariant(
          h.attempt === t.attempt,
          () => `task ${where} held under attempt ${h.attempt}, not ${t.attempt}`,
        )
        invariant(t.holder === this.rt.self, () => `task ${where} is local but names holder ${t.holder}`)
        return
      }
      case 'remote':
        invariant(
          t.holder !== undefined && this.byHolder.get(t.holder)?.has(t) === true,
          `task ${where} not indexed`,
        )
        invariant(t.job.remoteHeld.get(t.index) === t, `task ${where} missing from remoteHeld`)
        invariant(t.hop >= 1, `task ${where} is remote at hop ${t.hop}`)
        return
      case 'doubt':
        invariant(t.holder === undefined && t.desc !== undefined, `in-doubt task ${where} is malformed`)
        return
      case 'waiting':
        invariant(t.holder === undefined && t.desc === undefined, `waiting task ${where} has custody`)
        return
      case 'done':
      case 'failed':
        invariant(t.holder === undefined && t.desc === undefined, `final task ${where} still has custody`)
        return
      default:
        assertNever(t.state)
    }
  }
}

function live(e: Deadline, state: OwnedState): boolean {
  const t = e.task
  return t.state === state && t.deadline === e.deadline && t.job.active
}

/** Earliest live deadline of a queue (dropping stale heads). */
function headOf(q: Fifo<Deadline>, state: OwnedState): number | undefined {
  for (let e = q.peek(); e !== undefined; e = q.peek()) {
    if (live(e, state)) return e.deadline
    q.shift()
  }
  return undefined
}
