/**
 * The owner: the task table of every job submitted to (or restored on) this
 * node. It turns events into lifecycle moves (lifecycle.ts): submits and
 * restores, results, leases and custody hand-offs, deadlines, placement
 * notices, tail backups and progress. Custody moves only through
 * Custody.setState() (custody.ts).
 */

import type { HeldTask, Holder } from './holder.ts'
import {
  buildJob,
  HELD_MEMORY,
  heldBefore,
  invalidTasks,
  type OwnedJob,
  type OwnedTask,
  progressOf,
} from './job-table.ts'
import { EMPTY, OwnerLifecycle } from './lifecycle.ts'
import { type PeerView, sizeOf } from './peers.ts'
import { policyBlockReason, refusal } from './policy.ts'
import { blockReason, fits, fitsNode, type NodeSize } from './resources.ts'
import type { Runtime } from './runtime.ts'
import type {
  CopyKey,
  CustodyPath,
  JobId,
  JobProgress,
  JobSpec,
  PeerKey,
  SchedulerAdvert,
  TaskDescriptor,
  TaskInput,
  TaskKey,
  TaskResult,
} from './types.ts'
import { type MemberReason, memberReason, type TaskWhy } from './why.ts'

/**
 * First attempt number a restored owner hands out. Attempts are bumped one at
 * a time, so those used before a restart stay far below the driver's clock
 * in ms at the restart (wall clock in the daemon, monotonic virtual time in
 * the simulator); starting above them keeps a stale copy's late result or
 * lease from passing for the current attempt.
 */
export function restoreBase(now: number): number {
  return Number.isFinite(now) ? Math.max(0, Math.floor(now)) + 1 : 1
}

/** What the owner makes of a holder's claim on one task. */
type Claim = 'held' | 'stale' | 'refused'

/** The path ends at the sender (it names how the sender came to hold the task). */
function endsAt(path: CustodyPath | undefined, from: PeerKey): path is CustodyPath {
  return path !== undefined && path.length > 0 && path[path.length - 1] === from
}

/**
 * A remote task moves from its recorded holder to `from` only along a path
 * that ends at `from`, is longer than the holder's, and passes through the
 * recorded holder at its recorded hop (so an old grant replayed after custody
 * moved on, or a branch that never went through the holder, is refused).
 */
function transfers(t: OwnedTask, from: PeerKey, path: CustodyPath | undefined): path is CustodyPath {
  return endsAt(path, from) && path.length > t.hop && path[t.hop - 1] === t.holder
}

/** Failed runs of one job's tasks on one node past which it takes no more of them (while another node can). */
export const BAD_NODE_FAILURES = 3

export class Owner extends OwnerLifecycle {
  private readonly peers: PeerView
  private readonly selfSize: NodeSize

  constructor(rt: Runtime, holder: Holder, peers: PeerView, selfSize: NodeSize) {
    super(rt, holder)
    this.peers = peers
    this.selfSize = selfSize
  }

  // ---- submit, restore, cancel ---------------------------------------------

  /** A job submitted here is owned here, whatever its spec says. */
  private own(spec: JobSpec): JobSpec {
    return spec.owner === this.rt.self ? spec : { ...spec, owner: this.rt.self }
  }

  submit(spec: JobSpec, inputs: TaskInput[]): void {
    if (this.jobs.has(spec.id) || this.finished.has(spec.id)) return
    const job = buildJob(this.own(spec), inputs)
    this.jobs.set(spec.id, job)
    this.custody.dirty.add(job)
    for (const [t, reason] of invalidTasks(job)) {
      if (t.state === 'waiting') this.failCascade(t, this.synthetic(t, reason))
    }
    for (const t of job.tasks.values()) {
      if (t.state === 'waiting' && t.depsLeft === 0) this.ready(t, 'local')
    }
    this.checkBlocked(job)
    this.maybeFinish(job)
  }

  restore(
    spec: JobSpec,
    inputs: TaskInput[],
    finished: Array<{ index: number; ok: boolean; value?: Uint8Array }>,
  ): void {
    if (this.jobs.has(spec.id) || this.finished.has(spec.id)) return
    const job = buildJob(this.own(spec), inputs)
    this.jobs.set(spec.id, job)
    this.custody.dirty.add(job)
    // Attempts handed out before the restart are unknown; new ones start above them (see restoreBase).
    job.attemptBase = restoreBase(this.rt.now)
    for (const t of job.tasks.values()) t.attempt = job.attemptBase
    for (const f of finished) {
      const t = job.tasks.get(f.index)
      if (t === undefined || t.state !== 'waiting') continue
      this.leaveWaiting(t)
      this.custody.setState(t, f.ok ? 'done' : 'failed')
      if (f.ok) t.value = f.value ?? EMPTY
      t.input = undefined
    }
    const bad = invalidTasks(job)
    for (const t of job.tasks.values()) {
      if (t.state !== 'waiting') continue
      const failedDep = t.deps.find((d) => job.tasks.get(d)?.state === 'failed')
      const reason = failedDep !== undefined ? `dependency ${failedDep} failed` : bad.get(t)
      if (reason !== undefined) this.failCascade(t, this.synthetic(t, reason))
    }
    for (const t of job.tasks.values()) {
      if (t.state !== 'waiting') continue
      t.depsLeft = t.deps.filter((d) => job.tasks.get(d)?.state !== 'done').length
      if (t.depsLeft === 0) this.ready(t, 'doubt')
    }
    for (const t of job.tasks.values()) if (t.dependentsLeft <= 0) t.value = undefined
    this.checkBlocked(job)
    this.maybeFinish(job)
  }

  cancel(id: JobId): void {
    const job = this.jobs.get(id)
    if (job === undefined || !job.active) return
    const holders = new Set<PeerKey>()
    for (const t of job.tasks.values()) {
      if (t.state !== 'remote' || t.holder === undefined) continue
      holders.add(t.holder)
      this.custody.unindex(t)
    }
    this.holder.dropJob(id)
    for (const to of holders) this.rt.emit({ type: 'send-cancel', cause: this.rt.cause, to, job: id })
    this.finishJob(job, 'cancelled')
  }

  /**
   * Results from a holder. Each counts only if `from` held that attempt (now
   * or recently), or its verified path proves it was handed the current one
   * (custody then moves to it); the rest are dropped, counted and not acked.
   * A holder reports only runs of its own, so each ran on `from`, whatever its
   * `ranOn` says: a holder naming another node there would have had its
   * failures counted against that node (retries steered away from it) and its
   * results stored, shown and counted as that node's.
   */
  resultsReceived(from: PeerKey, results: Array<TaskResult & { path?: CustodyPath }>): void {
    const tasks: TaskKey[] = []
    for (const r of results) {
      if (!this.mayReport(from, r)) {
        this.rt.stats.refusedResults++
        continue
      }
      this.apply({ job: r.job, index: r.index, attempt: r.attempt, ranOn: from, outcome: r.outcome })
      tasks.push({ job: r.job, index: r.index, attempt: r.attempt })
    }
    this.rt.flushPersist()
    if (tasks.length === 0) return
    this.rt.emit({ type: 'ack-results', cause: this.rt.cause, to: from, tasks })
  }

  private mayReport(from: PeerKey, r: TaskResult & { path?: CustodyPath }): boolean {
    if (from === this.rt.self) return true
    const job = this.jobs.get(r.job)
    // A finished (or never known) job: nothing changes; acked so the holder forgets it.
    if (job === undefined) return true
    const t = job.tasks.get(r.index)
    if (t === undefined || t.state === 'waiting') return false
    if (t.state === 'remote' && t.holder === from && t.attempt === r.attempt) return true
    if (heldBefore(t, r.attempt, from)) return true
    if (t.state === 'done' || t.state === 'failed') return false
    if (this.claim(t, from, r.attempt, r.path) === 'held') return true
    // Handed over by the owner, though the owner still runs its own copy: the first result wins.
    return t.state === 'local' && r.attempt === t.attempt && endsAt(r.path, from)
  }

  localResult(r: TaskResult): void {
    this.apply(r)
  }

  localStart(job: JobId): void {
    const j = this.jobs.get(job)
    if (j !== undefined) this.custody.dirty.add(j)
  }

  // ---- leases and custody hand-offs ---------------------------------------------

  /**
   * A holder's heartbeat: each entry names one copy of an attempt (CopyKey).
   * The answer drops the entries that are not the copy custody follows, each
   * with the copy it named, so that the holder drops only that copy: by the
   * time the answer arrives it may hold a later copy of the same attempt.
   */
  leaseReceived(from: PeerKey, holdings: Array<CopyKey & { path?: CustodyPath }>): void {
    const drop: CopyKey[] = []
    const cancelled = new Set<JobId>()
    for (const k of holdings) {
      const t = this.jobs.get(k.job)?.tasks.get(k.index)
      let claim: Claim = 'stale'
      if (t === undefined) {
        if (this.finished.get(k.job)?.status === 'cancelled') cancelled.add(k.job)
      } else {
        claim = this.claim(t, from, k.attempt, k.path, k.copy)
      }
      if (claim === 'held') continue
      if (claim === 'refused') this.rt.stats.refusedClaims++
      const key = { job: k.job, index: k.index, attempt: k.attempt }
      drop.push(k.copy === undefined ? key : { ...key, copy: k.copy })
    }
    if (this.custody.heldBy(from).length === 0) this.peers.leaseFrom(from)
    this.rt.emit({
      type: 'answer-lease',
      cause: this.rt.cause,
      to: from,
      drop,
      cancelledJobs: [...cancelled],
    })
  }

  /**
   * A holder says it holds copy `copy` of this attempt. Its recorded holder
   * needs no proof; anyone else needs a verified path (see transfers); a task
   * queued here, or in doubt after a restart, moves only along a path that
   * ends at `from` (its first hop carries the owner's own tag).
   *
   * Copies (see CopyKey) keep a late lease from passing for the current copy.
   * One attempt can come back to the same holder: a holds copy 1, b steals it
   * (copy 2), a steals it back (copy 3), all within one lease round trip.
   * a's lease from before the hand-off, naming copy 1, can then arrive after
   * b's (custody moved to b at hop 2): it is an older copy of a past holder
   * (stale), and the answer's drop names copy 1, which a no longer holds, so
   * a keeps copy 3 (before copies, that drop named only task + attempt and a
   * dropped the copy it held; nobody held the task, and it failed as "lease
   * expired" though nothing had failed). Likewise the recorded holder's own
   * lease naming a copy older than the one recorded is stale, not a refresh.
   */
  private claim(
    t: OwnedTask,
    from: PeerKey,
    attempt: number,
    path: CustodyPath | undefined,
    named?: number,
  ): Claim {
    // The wire keeps the two in step (copy = links + 1); a hand-made event that differs proves nothing.
    if (path !== undefined && named !== undefined && path.length !== named) return 'refused'
    const copy = path?.length ?? named
    switch (t.state) {
      case 'doubt':
        if (!endsAt(path, from)) return 'refused'
        this.adopt(t, attempt)
        this.custody.setState(t, 'remote', from, path.length)
        this.custody.note(t, `claimed by ${from}'s lease after the restart (hop ${path.length})`)
        return 'held'
      case 'remote':
        if (attempt !== t.attempt) return 'stale'
        if (t.holder === from) {
          if (copy !== undefined && copy < t.hop) return 'stale'
          if (copy !== undefined && copy > t.hop && transfers(t, from, path)) {
            // It handed the task on and got it back; the leases of the holders between are late or lost.
            this.custody.setState(t, 'remote', from, path.length)
            this.custody.note(t, `back at ${from}: its lease shows a later copy (hop ${path.length})`)
            return 'held'
          }
          this.custody.refresh(t)
          return 'held'
        }
        if (transfers(t, from, path)) {
          this.custody.setState(t, 'remote', from, path.length)
          this.custody.note(t, `stolen on: ${from}'s lease shows the hand-off (hop ${path.length})`)
          return 'held'
        }
        // A copy custody has since passed beyond, of a node that held this attempt: late, not forged.
        if (copy !== undefined && copy <= t.hop && heldBefore(t, attempt, from)) return 'stale'
        return 'refused'
      case 'local': {
        if (attempt !== t.attempt) return 'stale'
        const here = this.holder.get(t.job.spec.id, t.index)
        // A backup copy of a straggler running here (tail.ts): both run, the first result wins.
        if (t.backedUp && here?.state === 'running' && heldBefore(t, attempt, from)) return 'held'
        if (!endsAt(path, from)) return 'refused'
        if (here === undefined || here.state !== 'queued') return 'stale'
        this.holder.drop(here)
        this.custody.setState(t, 'remote', from, path.length)
        this.custody.note(t, `claimed by ${from}'s lease (hop ${path.length})`)
        return 'held'
      }
      default:
        return 'stale'
    }
  }

  /**
   * For the I/O shell, before it fetches a result's outputs or its value sent as a blob: whether
   * `from` could report this attempt of a task of a job running here (with `hasPath`: a verified
   * custody path ending at `from` comes with it). Every result mayReport accepts for a running job
   * passes; a member that never held the task does not make this node fetch anything.
   */
  mayBring(from: PeerKey, key: TaskKey, hasPath: boolean): boolean {
    const t = this.task(key.job, key.index)
    if (t === undefined || t.state === 'waiting') return false
    if (t.state === 'remote' && t.holder === from && t.attempt === key.attempt) return true
    if (heldBefore(t, key.attempt, from)) return true
    if (t.state === 'done' || t.state === 'failed') return false
    return hasPath
  }

  /**
   * For the I/O shell: whether a lease (or, with `result`, a result) from
   * `from` naming `key` needs its credentials checked. False on the fast
   * path (the recorded holder, or for results a recent legitimate holder of
   * that attempt) and wherever no path could change the answer.
   */
  needsPath(from: PeerKey, key: CopyKey, result: boolean): boolean {
    const t = this.task(key.job, key.index)
    if (t === undefined) return false
    switch (t.state) {
      case 'doubt':
        return !(result && heldBefore(t, key.attempt, from))
      case 'local':
      case 'remote':
        // The recorded holder naming its recorded copy (or an older one: stale whatever the path).
        if (t.state === 'remote' && t.holder === from && t.attempt === key.attempt)
          return key.copy !== undefined && key.copy > t.hop
        if (result && heldBefore(t, key.attempt, from)) return false
        // A copy at or before the recorded hop cannot move custody (transfers needs a longer path).
        if (t.state === 'remote' && key.copy !== undefined && key.copy <= t.hop) return false
        return key.attempt === t.attempt
      default:
        return false
    }
  }

  private adopt(t: OwnedTask, attempt: number): void {
    t.attempt = attempt
    if (t.desc !== undefined) t.desc = { ...t.desc, attempt }
  }

  private task(job: JobId, index: number): OwnedTask | undefined {
    return this.jobs.get(job)?.tasks.get(index)
  }

  /** A task queued here left with a steal grant or a push: `to` holds it at hop 1. */
  handedOff(job: JobId, index: number, attempt: number, to: PeerKey, how: 'stolen' | 'pushed'): void {
    const t = this.task(job, index)
    if (t?.state !== 'local' || t.attempt !== attempt) return
    this.custody.setState(t, 'remote', to, 1)
    this.custody.note(t, how === 'stolen' ? `stolen by ${to}` : `pushed to ${to}`)
  }

  /** A grant to `to` could not be written: the task is ours again, same attempt. */
  grantFailed(to: PeerKey, d: TaskDescriptor): void {
    const t = this.task(d.job, d.index)
    if (t?.state !== 'remote' || t.holder !== to || t.attempt !== d.attempt || t.desc === undefined) return
    this.custody.setState(t, 'local')
    this.custody.note(t, `the grant to ${to} could not be written`)
    this.holder.hold(t.job.spec, t.desc)
  }

  /** A push to `to` failed (or its policy refused it): custody is in doubt, so re-queue with a new attempt. */
  pushFailed(to: PeerKey, d: TaskDescriptor, reason: string): void {
    const t = this.task(d.job, d.index)
    if (t?.state !== 'remote' || t.holder !== to || t.attempt !== d.attempt) return
    this.requeue(t, `push to ${to} failed: ${reason}`)
  }

  /**
   * One of our own tasks came back to us in a stolen or pushed batch. It is
   * queued here under a new attempt (no failure counted): the old attempt's
   * custody chain ends here, so a lease its holders sent before they handed
   * it on, arriving now, names a stale attempt and can no longer claim the
   * task out of our queue (it would then wait for leases that never name it,
   * and fail as "lease expired" though nothing failed).
   */
  reclaim(d: TaskDescriptor): void {
    const t = this.task(d.job, d.index)
    if (t === undefined) return
    if (t.state === 'doubt') this.adopt(t, d.attempt)
    else if (t.state !== 'remote' || t.attempt !== d.attempt) return
    if (t.desc === undefined) return
    t.attempt = Math.max(t.attempt + 1, t.job.attemptBase)
    t.desc = { ...t.desc, attempt: t.attempt }
    this.custody.setState(t, 'local')
    this.custody.note(t, 'came back here in a stolen or pushed batch')
    this.holder.hold(t.job.spec, t.desc)
  }

  peerGone(peer: PeerKey): void {
    for (const t of this.custody.heldBy(peer)) this.infraFailure(t, `holder ${peer} disconnected`, false)
  }

  /** A peer of this size left the view: jobs it could run may have lost their only taker. */
  peerLeft(size: NodeSize): void {
    this.recheckRemoteOnly(size)
  }

  /** Lease and grace deadlines due by now. */
  expire(): void {
    const { leases, graces } = this.custody.expired()
    const ms = this.rt.s.leaseTimeoutMs
    for (const t of leases) {
      if (t.state === 'remote')
        this.infraFailure(t, `lease expired: holder ${t.holder} silent for ${ms} ms`, false)
    }
    for (const t of graces) {
      if (t.state === 'doubt') this.requeue(t, 'no holder claimed it within the grace after the restart')
    }
  }

  nextDeadline(): number | undefined {
    return this.custody.nextDeadline()
  }

  // ---- retries elsewhere -------------------------------------------------------------

  /** `node` kept failing this job's tasks: at least BAD_NODE_FAILURES failed runs, more than its good ones. */
  private failsJob(job: OwnedJob, node: PeerKey): boolean {
    const r = job.record.get(node)
    return r !== undefined && r.failed >= BAD_NODE_FAILURES && r.failed > r.ok
  }

  /** Neither failed this task nor keeps failing its job. */
  private clean(t: OwnedTask, node: PeerKey): boolean {
    return t.failedOn?.includes(node) !== true && !this.failsJob(t.job, node)
  }

  /** Some node other than `node` that fits the task, accepts it and is clean for it (this node included). */
  private otherTaker(t: OwnedTask, node: PeerKey): boolean {
    const r = t.job.spec.resources
    const self = this.rt.self
    if (self !== node && this.clean(t, self) && fitsNode(r, this.selfSize)) return true
    for (const [peer, info] of this.peers.peers) {
      if (peer === node || !this.clean(t, peer) || !fitsNode(r, sizeOf(info.advert))) continue
      if (refusal(info.advert.accepts, t.job.spec) === undefined) return true
    }
    return false
  }

  /**
   * Of tasks about to go to `peer` (a steal grant, a push), keeps here those it failed before,
   * or whose job it keeps failing, while another node could take them; returns the rest.
   */
  withhold(peer: PeerKey, tasks: HeldTask[]): HeldTask[] {
    const out: HeldTask[] = []
    for (const h of tasks) {
      const t = h.own ? this.task(h.jobId, h.index) : undefined
      if (
        t === undefined ||
        t.state !== 'local' ||
        t.attempt !== h.attempt ||
        this.clean(t, peer) ||
        !this.otherTaker(t, peer)
      ) {
        out.push(h)
        continue
      }
      this.holder.hold(h.job.spec, h.desc)
    }
    return out
  }

  /**
   * A task that failed is retried on a node it has not failed on: here when this node is
   * clean for it and has room now, else pushed at once to a clean peer whose advert shows room
   * (else it waits here for a clean thief or slot).
   */
  protected override placeRetry(t: OwnedTask): void {
    if (t.failedOn === undefined || t.desc === undefined) return
    const r = t.job.spec.resources
    if (this.clean(t, this.rt.self) && this.holder.pool.canStart(r, 1)) return
    let to: PeerKey | undefined
    for (const [peer, info] of this.peers.peers) {
      const a = info.advert
      if (!this.clean(t, peer) || !fits(r, { cpu: a.freeSlots, gpu: a.freeGpus, memoryMB: a.freeMemoryMB }))
        continue
      if (refusal(a.accepts, t.job.spec) !== undefined) continue
      to = peer
      break
    }
    const h = this.holder.get(t.job.spec.id, t.index)
    if (to === undefined || h === undefined || h.state !== 'queued') return
    this.holder.drop(h)
    this.custody.setState(t, 'remote', to, 1)
    this.custody.note(t, `retry pushed to ${to}, a node it has not failed on`)
    this.rt.stats.pushes++
    this.rt.emit({
      type: 'push-batch',
      cause: this.rt.cause,
      to,
      batch: { jobs: [t.job.spec], tasks: [t.desc] },
    })
  }

  // ---- placement notices, backups, progress ----------------------------------------

  /**
   * Why no known node will run the job's tasks ('' if one will): none is big
   * enough (resources), or every node big enough refuses them (its advert's
   * trust policy), each named with its reason. This node always runs its own.
   */
  private blockedBy(job: OwnedJob): string {
    const r = job.spec.resources
    if (fitsNode(r, this.selfSize)) return ''
    const refusals: Array<{ peer: PeerKey; reason: string }> = []
    for (const [peer, info] of this.peers.peers) {
      if (!fitsNode(r, sizeOf(info.advert))) continue
      const why = refusal(info.advert.accepts, job.spec)
      if (why === undefined) return ''
      refusals.push({ peer, reason: why })
    }
    if (refusals.length > 0) return policyBlockReason(job.spec, refusals)
    return blockReason(r, [this.selfSize, ...this.peers.sizes()])
  }

  private checkBlocked(job: OwnedJob): void {
    if (!job.active) return
    const reason = this.blockedBy(job)
    if (reason === job.blocked) return
    job.blocked = reason
    if (reason === '') this.blocked.delete(job)
    else this.blocked.add(job)
    this.rt.emit({ type: 'job-blocked', cause: this.rt.cause, job: job.spec.id, reason })
  }

  /** A peer's advert: blocked jobs it could run are checked again; all remote-only ones if its policy changed. */
  advertReceived(advert: SchedulerAdvert, acceptsChanged = false): void {
    const size = sizeOf(advert)
    if (acceptsChanged) return this.recheckRemoteOnly(size)
    if (this.blocked.size === 0) return
    for (const job of [...this.blocked]) if (fitsNode(job.spec.resources, size)) this.checkBlocked(job)
  }

  /** Jobs this node cannot run itself depend on peers: check again those a peer of `size` could run. */
  private recheckRemoteOnly(size: NodeSize): void {
    for (const job of [...this.jobs.values()]) {
      const r = job.spec.resources
      if (job.active && !fitsNode(r, this.selfSize) && fitsNode(r, size)) this.checkBlocked(job)
    }
  }

  /** Tail backups (see tail.ts); returns when the next one may become due. */
  backups(): number | undefined {
    this.tail.update(this.custody.dirty)
    return this.tail.run(this.rt, this.holder)
  }

  /** Backups of stragglers running here, pushed to idle peers (tail.ts); when the next may become due. */
  localBackups(): number | undefined {
    this.tail.update(this.custody.dirty)
    return this.tail.runLocal(this.rt, this.holder, this.jobs, (t) => this.pushBackup(t))
  }

  /**
   * Pushes a copy of a task running here, same attempt, to an idle peer that fits and accepts
   * it (and has not failed it). The peer is remembered as a holder of that attempt, so its
   * lease and its result count; custody stays here.
   */
  private pushBackup(t: OwnedTask): boolean {
    if (t.desc === undefined) return false
    const r = t.job.spec.resources
    for (const [peer, info] of this.peers.peers) {
      const a = info.advert
      if (!info.idle || !fits(r, { cpu: a.freeSlots, gpu: a.freeGpus, memoryMB: a.freeMemoryMB })) continue
      if (refusal(a.accepts, t.job.spec) !== undefined || !this.clean(t, peer)) continue
      if (!heldBefore(t, t.attempt, peer)) {
        t.held ??= []
        t.held.push({ attempt: t.attempt, holder: peer })
        if (t.held.length > HELD_MEMORY) t.held.shift()
      }
      this.peers.pushed(peer, this.rt.now)
      this.custody.note(t, `backup copy pushed to ${peer}: a straggler here while it sat idle`)
      this.rt.emit({
        type: 'push-batch',
        cause: this.rt.cause,
        to: peer,
        batch: { jobs: [t.job.spec], tasks: [t.desc] },
      })
      return true
    }
    return false
  }

  /** Emits job-progress / job-finished for the jobs changed in this handle() call. */
  flush(): void {
    this.tail.update(this.custody.dirty)
    for (const job of this.custody.dirty) {
      const status = this.finalStatus.get(job)
      if (status !== undefined) {
        this.finalStatus.delete(job)
        const progress = this.finished.get(job.spec.id)?.progress ?? progressOf(job, 0)
        this.rt.emit({ type: 'job-finished', cause: this.rt.cause, job: job.spec.id, status, progress })
      } else if (job.active) {
        const progress = progressOf(job, this.holder.runningOf(job.spec.id), this.remoteRunning())
        this.rt.emit({ type: 'job-progress', cause: this.rt.cause, progress })
      }
    }
    this.custody.dirty.clear()
  }

  /** Whether this node owns (or owned) a job of this id: nobody else's job may use it here. */
  knows(id: JobId): boolean {
    return this.jobs.has(id) || this.finished.has(id)
  }

  progress(id: JobId): JobProgress | undefined {
    const job = this.jobs.get(id)
    if (job !== undefined) return progressOf(job, this.holder.runningOf(id), this.remoteRunning())
    return this.finished.get(id)?.progress
  }

  /** Tasks other nodes advertise as running (all jobs): a cap on how many of one job's remote tasks run. */
  private remoteRunning(): number {
    let n = 0
    for (const info of this.peers.peers.values()) n += info.advert.running
    return n
  }

  check(): void {
    this.custody.check(this.jobs.values(), this.holder)
  }

  // ---- questions (gridnode why) -------------------------------------------------------

  /** Where one task stands, its story, and (not running) each member's reason it cannot take it now. */
  why(id: JobId, index: number): TaskWhy {
    const base: TaskWhy = { job: id, index, known: 'unknown', story: [], storyDropped: 0, members: [] }
    const job = this.jobs.get(id)
    if (job === undefined) {
      const story = this.stories.get(id)
      if (story === undefined) return base
      return { ...base, known: 'finished', story: story.of(index), storyDropped: story.dropped }
    }
    const t = job.tasks.get(index)
    if (t === undefined) return base
    const out: TaskWhy = {
      ...base,
      known: 'live',
      state: t.state,
      attempt: t.attempt,
      story: job.story.of(index),
      storyDropped: job.story.dropped,
    }
    if (t.state === 'remote') {
      out.holder = t.holder
      out.heldSince = t.heldSince
    }
    if (t.state === 'waiting') out.waitingFor = t.deps.filter((d) => job.tasks.get(d)?.state !== 'done')
    if (t.state === 'local') {
      const h = this.holder.get(id, index)
      if (h?.state === 'running') out.runningHere = true
      else if (h !== undefined) out.queued = this.holder.queue.position(h)
    }
    const open = t.state === 'waiting' || t.state === 'doubt' || (t.state === 'local' && !out.runningHere)
    if (open) out.members = this.memberReasons(job.spec)
    return out
  }

  /** This node first (its own job: no policy applies), then every peer in view. */
  memberReasons(spec: JobSpec): MemberReason[] {
    const r = spec.resources
    const pool = this.holder.pool
    const self = this.rt.self
    let mine: MemberReason
    if (!fitsNode(r, this.selfSize)) {
      mine = { ...memberReason(self, spec, selfAdvert(this.selfSize)), peer: self }
    } else if (fits(r, pool.free())) {
      mine = {
        peer: self,
        canTake: true,
        kind: 'free',
        reason: 'could start it now (queued tasks start in turn)',
      }
    } else {
      const busy = `busy: ${pool.freeSlots} free slots of ${pool.slots}, ${this.holder.running} running`
      mine = { peer: self, canTake: false, kind: 'busy', reason: busy }
    }
    const out = [mine]
    for (const [peer, info] of this.peers.peers) out.push(memberReason(peer, spec, info.advert))
    return out
  }
}

/** An advert of an idle node of this size (to word why a node is too small). */
function selfAdvert(n: NodeSize): SchedulerAdvert {
  return {
    slots: n.slots,
    freeSlots: n.slots,
    memoryMB: n.memoryMB,
    freeMemoryMB: n.memoryMB,
    gpus: n.gpus,
    freeGpus: n.gpus,
    ready: [],
    running: 0,
    meanTaskMs: 0,
  }
}
