/**
 * NodeScheduler: one node's scheduler, owner and holder and thief at once.
 * handle(event) is the only door; it returns the commands to carry out, each
 * carrying the cause of its event. Time comes only from event.at.
 */
import { Advertiser, buildAdvert } from './advert.ts'
import { assertNever, invariant } from './errors.ts'
import { Holder } from './holder.ts'
import { Owner } from './owner.ts'
import { PeerView, sizeOf } from './peers.ts'
import { accepts } from './policy.ts'
import { pushToIdle } from './push.ts'
import { Random } from './random.ts'
import { Runtime, resolveSettings, type SchedulerOptions, type SchedulerStats } from './runtime.ts'
import { grantCount, Thief, toBatch } from './steal.ts'
import type {
  Batch,
  Command,
  CopyKey,
  JobId,
  JobProgress,
  JobSpec,
  PeerKey,
  SchedulerAdvert,
  SchedulerEvent,
  TaskKey,
} from './types.ts'
import type { MemberReason, TaskWhy } from './why.ts'

type EventOf<T extends SchedulerEvent['type']> = Extract<SchedulerEvent, { type: T }>

export class NodeScheduler {
  private readonly rt: Runtime
  private readonly holder: Holder
  private readonly owner: Owner
  private readonly peers = new PeerView()
  private readonly thief: Thief
  private readonly adverts = new Advertiser()
  private backupDue: number | undefined

  constructor(opts: SchedulerOptions) {
    this.rt = new Runtime(opts.self, resolveSettings(opts), new Random(opts.seed))
    this.holder = new Holder(this.rt, opts.capacity, {
      localResult: (r) => this.owner.localResult(r),
      localStart: (job) => this.owner.localStart(job),
      anyPeerIdle: () => this.peers.idle.size > 0,
    })
    this.owner = new Owner(this.rt, this.holder, this.peers, this.holder.pool.size)
    this.thief = new Thief(this.rt)
  }

  handle(event: SchedulerEvent): Command[] {
    this.rt.begin(event.at, event.cause)
    this.dispatch(event)
    this.rt.flushPersist()
    this.settle()
    const out = this.rt.out
    this.rt.out = []
    return out
  }

  private dispatch(e: SchedulerEvent): void {
    switch (e.type) {
      case 'tick':
        break
      case 'job-submitted':
        this.owner.submit(e.job, e.tasks)
        break
      case 'job-restored':
        this.owner.restore(e.job, e.tasks, e.finished)
        break
      case 'job-cancelled':
        this.owner.cancel(e.job)
        break
      case 'advert-received':
        this.advertReceived(e)
        break
      case 'peer-connected':
        this.holder.peerConnected(e.peer)
        break
      case 'peer-gone':
        this.peerGone(e.peer)
        break
      case 'steal-granted':
        this.stealGranted(e)
        break
      case 'steal-failed':
        this.thief.failed(e.requestId)
        break
      case 'steal-requested':
        this.stealRequested(e)
        break
      case 'grant-failed':
        this.grantFailed(e.to, e.batch)
        break
      case 'batch-pushed':
        this.batchPushed(e.from, e.batch)
        break
      case 'push-failed':
        for (const d of e.batch.tasks) this.owner.pushFailed(e.to, d, e.reason)
        break
      case 'task-finished':
        this.holder.finished(e.task, e.outcome)
        break
      case 'tasks-finished':
        for (const f of e.finished) this.holder.finished(f.task, f.outcome)
        break
      case 'results-received':
        this.owner.resultsReceived(e.from, e.results)
        break
      case 'results-acked':
        this.holder.outbox.acked(e.from, e.tasks)
        break
      case 'results-send-failed':
        this.holder.outbox.sendFailed(e.to, e.tasks)
        break
      case 'lease-received':
        this.owner.leaseReceived(e.from, e.holdings)
        break
      case 'lease-answered':
        this.holder.leaseAnswered(e.from, e.drop, e.cancelledJobs)
        break
      case 'cancel-received':
        this.holder.cancelFrom(e.from, e.job)
        break
      case 'policy-changed':
        this.holder.setPolicy(e.policy)
        break
      case 'push-refused':
        // Refused whole before custody moved: back to the queue, a new attempt, no failure counted.
        for (const d of e.batch.tasks) this.owner.pushFailed(e.to, d, e.reason)
        break
      default:
        assertNever(e)
    }
  }

  private advertReceived(e: EventOf<'advert-received'>): void {
    if (e.peer === this.rt.self) return
    const change = this.peers.update(e.peer, e.advert, e.rttMs, this.rt.now, this.rt.s.advertIntervalMs)
    this.owner.advertReceived(e.advert, change.acceptsChanged)
    if (change.moreReady) this.thief.moreReadyAdvertised()
  }

  private peerGone(peer: PeerKey): void {
    if (peer === this.rt.self) return
    this.owner.peerGone(peer)
    const info = this.peers.peers.get(peer)
    this.peers.forget(peer)
    if (info !== undefined) this.owner.peerLeft(sizeOf(info.advert))
    this.thief.peerGone(peer)
  }

  /**
   * Tasks past the `max` the steal asked for are not taken (an honest victim never sends them);
   * a grant of which nothing stays here counts as an empty steal, so the thief backs off.
   */
  private stealGranted(e: EventOf<'steal-granted'>): void {
    const max = this.thief.asked(e.requestId) ?? this.rt.s.maxBatch
    const batch = e.batch.tasks.length > max ? { ...e.batch, tasks: e.batch.tasks.slice(0, max) } : e.batch
    const taken = this.acceptBatch(batch)
    this.rt.stats.tasksStolen += taken
    this.thief.granted(e.requestId, taken)
  }

  /** Takes custody of a batch and tells the owners at once; returns how many of its tasks stay here. */
  private acceptBatch(batch: Batch): number {
    const { leases, taken } = this.holder.acceptBatch(this.withoutCollisions(batch), (_spec, d) =>
      this.owner.reclaim(d),
    )
    for (const [owner, keys] of leases) this.holder.sendLease(owner, keys)
    return taken
  }

  /**
   * Job ids are chosen by their owners, and any member can learn them: a
   * batch naming a job id that another owner already uses here (a job this
   * node owns, or one held here for someone else) is a lie or a collision.
   * Its tasks are refused, so they can neither mix into the other job nor
   * choose its inputs.
   */
  private withoutCollisions(batch: Batch): Batch {
    const bad = new Set<string>()
    for (const job of batch.jobs) {
      const held = this.holder.spec(job.id)
      const clash =
        (job.owner !== this.rt.self && this.owner.knows(job.id)) ||
        (held !== undefined && held.owner !== job.owner)
      if (clash) bad.add(job.id)
    }
    if (bad.size === 0) return batch
    const tasks = batch.tasks.filter((d) => !bad.has(d.job))
    this.rt.stats.jobIdCollisions += batch.tasks.length - tasks.length
    return { jobs: batch.jobs.filter((j) => !bad.has(j.id)), tasks }
  }

  /**
   * Only an owner pushes, and only its own tasks: a push naming a job the
   * sender does not own is refused whole (nothing enters custody). A push
   * this node's policy refuses is refused whole too, with the reason
   * (refuse-push): the owner re-queues it without counting an attempt.
   */
  private batchPushed(from: PeerKey, batch: Batch): void {
    if (!pushAllowed(from, batch)) {
      this.rt.stats.refusedPushes++
      return
    }
    for (const job of batch.jobs) {
      const reason = this.holder.refusal(job)
      if (reason === undefined || !batch.tasks.some((d) => d.job === job.id)) continue
      this.rt.stats.policyRefused++
      this.rt.emit({ type: 'refuse-push', cause: this.rt.cause, to: from, reason })
      return
    }
    const limit = this.holder.pushLimit(from, batch)
    if (limit !== undefined) {
      this.rt.stats.policyRefused++
      this.rt.emit({ type: 'refuse-push', cause: this.rt.cause, to: from, reason: limit })
      return
    }
    this.acceptBatch(batch)
  }

  private stealRequested(e: EventOf<'steal-requested'>): void {
    // Grant only what the thief accepts (its request says; else its advert; its own tasks always),
    // and other owners' tasks only while they are worth a hop (Settings.handOnMinMs).
    const thief = e.accepts ?? this.peers.peers.get(e.from)?.advert.accepts
    const handsOn = this.holder.handsOn()
    const laneOk = (job: JobId) => {
      const spec = this.holder.spec(job)
      if (spec === undefined) return false
      if (spec.owner !== this.rt.self && spec.owner !== e.from && !handsOn) return false
      return spec.owner === e.from || accepts(thief, spec)
    }
    const n = e.from === this.rt.self ? 0 : grantCount(this.holder, e.free, e.max, this.rt.s, laneOk)
    const tasks = this.owner.withhold(e.from, this.holder.take(n, e.free, false, laneOk))
    for (const t of tasks) if (t.own) this.owner.handedOff(t.jobId, t.index, t.attempt, e.from, 'stolen')
    this.rt.stats.tasksGiven += tasks.length
    this.rt.emit({
      type: 'reply-steal',
      cause: this.rt.cause,
      to: e.from,
      requestId: e.requestId,
      batch: toBatch(tasks),
    })
  }

  private grantFailed(to: PeerKey, batch: Batch): void {
    const specs = new Map(batch.jobs.map((j) => [j.id, j]))
    for (const d of batch.tasks) {
      const spec = specs.get(d.job)
      if (spec === undefined) continue
      if (spec.owner === this.rt.self) this.owner.grantFailed(to, d)
      else this.holder.hold(spec, d)
    }
  }

  /** Deadlines, then starts, pushes, backups, steals and the coalesced outputs. */
  private settle(): void {
    this.owner.expire()
    this.thief.expire()
    this.holder.tick()
    this.holder.startRunnable()
    pushToIdle(this.rt, this.holder, this.owner, this.peers)
    const idle = this.holder.queue.size === 0 && this.holder.pool.freeSlots > 0
    const remote = idle ? this.owner.backups() : undefined
    const local = this.owner.localBackups()
    this.backupDue = remote === undefined || (local !== undefined && local < remote) ? local : remote
    this.thief.maybeSteal(this.holder, this.peers)
    this.holder.outbox.flush()
    this.rt.flushPersist()
    this.owner.flush()
    this.adverts.maybePublish(this.rt, this.holder)
  }

  nextDeadline(): number | undefined {
    let at: number | undefined
    const consider = (t: number | undefined) => {
      if (t !== undefined && t > this.rt.now && (at === undefined || t < at)) at = t
    }
    consider(this.owner.nextDeadline())
    consider(this.holder.nextDeadline())
    consider(this.thief.nextDeadline())
    consider(this.backupDue)
    consider(this.adverts.nextDeadline(this.rt))
    return at
  }

  /**
   * Whether this node still owes `owner` the result of `task` (in the outbox,
   * not yet acknowledged or dropped): the shell keeps what the result refers
   * to (output files, big values) until it is not.
   */
  owesResult(owner: PeerKey, task: CopyKey): boolean {
    return this.holder.outbox.owes(owner, task)
  }

  /**
   * For the I/O shell: whether credentials a lease (or, with `result`, a
   * result) from `from` attaches for `key` need checking, i.e. whether the
   * scheduler could use a verified path. False on the fast path.
   */
  needsPath(from: PeerKey, key: CopyKey, result = false): boolean {
    return this.owner.needsPath(from, key, result)
  }

  /** For the I/O shell: whether a result from `from` may bring files or blobs here (Owner.mayBring). */
  mayBring(from: PeerKey, key: TaskKey, hasPath: boolean): boolean {
    return this.owner.mayBring(from, key, hasPath)
  }

  checkInvariants(): void {
    this.holder.check(invariant)
    this.owner.check()
  }

  advert(): SchedulerAdvert {
    return buildAdvert(this.holder)
  }

  jobProgress(job: JobId): JobProgress | undefined {
    return this.owner.progress(job)
  }

  /** "Why isn't it running?" for one task of a job owned here (why.ts). */
  why(job: JobId, index: number): TaskWhy {
    return this.owner.why(job, index)
  }

  /** Each member's reason it cannot take a task of `spec` now (this node first). */
  memberReasons(spec: JobSpec): MemberReason[] {
    return this.owner.memberReasons(spec)
  }

  stats(): SchedulerStats {
    return { ...this.rt.stats }
  }
}

/** A pushed batch: every job is owned by the sender, and every task is of one of them. */
export function pushAllowed(from: PeerKey, batch: Batch): boolean {
  const ids = new Set<string>()
  for (const j of batch.jobs) {
    if (j.owner !== from) return false
    ids.add(j.id)
  }
  for (const d of batch.tasks) if (!ids.has(d.job)) return false
  return true
}
