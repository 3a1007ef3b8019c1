/**
 * The holder: every task this node holds right now (its own and others'),
 * queued or running, with resource accounting; the results outbox for remote
 * owners (kept until acked, resent on a timer); and the lease heartbeats
 * that tell each owner what this node holds of its jobs.
 *
 * At most one entry per (job, index) lives here. A newer attempt of a task
 * already held replaces a queued entry's descriptor, or becomes the attempt
 * a running entry answers for (its run keeps its own `runAttempt`).
 */
import { BoundedMap, getOrCreate, ownBytes } from './collections.ts'
import { copyOf, MAX_CUSTODY_LINKS } from './credentials.ts'
import { Outbox } from './outbox.ts'
import { openPolicy, refusal } from './policy.ts'
import { FairQueue, type LaneFilter, type Queueable, type Slot } from './queue.ts'
import {
  fits,
  fitsNode,
  gpuCost,
  MAX_DEPTH,
  PIPELINE_ALWAYS_MS,
  ResourcePool,
  slotCost,
  TINY_TASK_MS,
} from './resources.ts'
import type { Runtime } from './runtime.ts'
import type {
  Batch,
  Capacity,
  CopyKey,
  CustodyCredentials,
  HeldKey,
  JobId,
  JobSpec,
  NodePolicy,
  PeerKey,
  Resources,
  TaskDescriptor,
  TaskKey,
  TaskOutcome,
  TaskResult,
} from './types.ts'

export interface HeldJob {
  readonly spec: JobSpec
  readonly tasks: Map<number, HeldTask>
  /** Results in the outbox not yet acked. */
  unacked: number
  /** Tasks of this job running here. */
  running: number
}

export interface HeldTask extends Queueable {
  readonly job: HeldJob
  readonly index: number
  /** The attempt this node answers for (leases, results). */
  attempt: number
  /** The attempt the executor was started with (task-finished / cancel-task key). */
  runAttempt: number
  desc: TaskDescriptor
  /** The credentials of `attempt` (a running entry's desc may be of an older one). */
  custody: CustodyCredentials | undefined
  /** Which copy of `attempt` this is (copyOf(custody); see CopyKey): leases name it, drops must match it. */
  copy: number
  state: 'queued' | 'running'
  gpus: number[]
}

/** Calls from the holder into the owner half of the node. */
export interface HolderHooks {
  /** A task of a job this node owns finished here. */
  localResult(r: TaskResult): void
  /** A task of a job this node owns started here. */
  localStart(job: JobId): void
  /** Does some peer advertise a free slot and nothing ready? */
  anyPeerIdle(): boolean
}

/** A lease holding: the key and copy, with the credentials of that attempt when it has some. */
export function heldKey(
  job: JobId,
  index: number,
  attempt: number,
  custody: CustodyCredentials | undefined,
): HeldKey {
  const copy = copyOf(custody)
  return custody === undefined ? { job, index, attempt, copy } : { job, index, attempt, copy, custody }
}

/** A drop naming no copy (a hand-made event) means every copy of that attempt. */
function sameCopy(copy: number, k: CopyKey): boolean {
  return k.copy === undefined || k.copy === copy
}

const EWMA_ALPHA = 0.2
const CANCELLED_MEMORY = 4096

export class Holder {
  readonly queue = new FairQueue<HeldTask>()
  readonly pool: ResourcePool
  /** Tasks running here now. */
  running = 0
  /** EWMA of local run times (ms); undefined until a task finished here. */
  meanMs: number | undefined
  private readonly rt: Runtime
  private readonly hooks: HolderHooks
  private readonly jobs = new Map<JobId, HeldJob>()
  /** Remote owners → their jobs held here (for leases). */
  private readonly byOwner = new Map<PeerKey, Set<HeldJob>>()
  /** Results for remote owners, until acked. */
  readonly outbox: Outbox
  /** Jobs their owners cancelled: tasks of these are refused. */
  private readonly cancelled = new BoundedMap<JobId, true>(CANCELLED_MEMORY)
  private leaseDueAt: number | undefined
  /** Trust and owner policy in force (policy-changed replaces it). */
  policy: NodePolicy
  /** Slots held by running tasks of other owners. */
  foreignUsed = 0
  /** Bytes of other owners' task inputs held here (queued or running), all owners together and per owner. */
  foreignBytes = 0
  private readonly bytesByOwner = new Map<PeerKey, number>()
  /** When the owner policy suspended foreign tasks (undefined: not suspended). */
  private suspendedAt: number | undefined

  constructor(rt: Runtime, capacity: Capacity, hooks: HolderHooks) {
    this.rt = rt
    this.pool = new ResourcePool(capacity)
    this.hooks = hooks
    this.outbox = new Outbox(rt, (job) => this.gc(job as HeldJob))
    this.policy = openPolicy(this.pool.slots)
  }

  // ---- policy --------------------------------------------------------------

  /** Slots free for tasks of other owners now (0 while suspended or outside the owner policy). */
  foreignFree(): number {
    if (this.policy.suspended || !this.policy.accepts.foreign) return 0
    return Math.max(0, Math.min(this.pool.freeSlots, this.policy.foreignSlots - this.foreignUsed))
  }

  /** May a task of another owner needing `r` start now (with `depth` tasks per slot for tiny ones)? */
  private foreignRoom(r: Resources, depth: number): boolean {
    if (this.policy.suspended || !this.policy.accepts.foreign) return false
    const limit = gpuCost(r) === 0 ? this.policy.foreignSlots * depth : this.policy.foreignSlots
    return this.foreignUsed + slotCost(r) <= limit
  }

  /** Why this node refuses tasks of `spec` now, or undefined (its own are always welcome). */
  refusal(spec: JobSpec): string | undefined {
    if (spec.owner === this.rt.self) return undefined
    const why = refusal(this.policy.accepts, spec)
    if (why !== undefined) return why
    if (this.policy.suspended) return 'owner policy: the machine is in use; try elsewhere'
    if (this.policy.foreignSlots < 1) return 'owner policy: lends no slots now'
    return undefined
  }

  /**
   * A new policy. Suspension starts or ends at once (suspend-tasks /
   * resume-tasks for the foreign tasks running here); suspended past
   * handBackAfterMs, foreign tasks are handed back (see tick).
   */
  setPolicy(p: NodePolicy): void {
    const was = this.policy.suspended
    this.policy = p
    if (p.suspended === was) return
    const tasks: TaskKey[] = []
    for (const t of this.runningTasks()) {
      if (!t.own) tasks.push({ job: t.jobId, index: t.index, attempt: t.runAttempt })
    }
    this.suspendedAt = p.suspended ? this.rt.now : undefined
    if (tasks.length === 0) return
    this.rt.emit({ type: p.suspended ? 'suspend-tasks' : 'resume-tasks', cause: this.rt.cause, tasks })
  }

  private handBackDue(): number | undefined {
    return this.suspendedAt === undefined || this.byOwner.size === 0
      ? undefined
      : this.suspendedAt + this.policy.handBackAfterMs
  }

  /** Gives every task of other owners held here back to its owner (a `returned` result). */
  handBackForeign(reason: string): void {
    for (const jobs of [...this.byOwner.values()]) {
      for (const job of [...jobs]) for (const t of [...job.tasks.values()]) this.giveBack(t, reason)
    }
  }

  /** Stops holding one task of another owner and tells the owner (infrastructure: no attempt counted). */
  giveBack(t: HeldTask, reason: string): void {
    const result: TaskResult = {
      job: t.jobId,
      index: t.index,
      attempt: t.attempt,
      ranOn: this.rt.self,
      outcome: { status: 'returned', error: reason, durationMs: 0 },
    }
    if (t.custody !== undefined) result.custody = t.custody
    if (t.state === 'running') {
      const task = { job: t.jobId, index: t.index, attempt: t.runAttempt }
      this.rt.emit({ type: 'cancel-task', cause: this.rt.cause, task })
    }
    this.detach(t)
    this.rt.stats.returned++
    this.outbox.add(t.job, result)
    this.gc(t.job)
  }

  /**
   * Tasks per slot the executor is fed: more when they are tiny, two when they are short. A task
   * waiting at a worker is out of other nodes' reach, so from PIPELINE_ALWAYS_MS on the second
   * one goes only while no peer is idle: where one is, it may as well run the task now.
   */
  depth(): number {
    const mean = this.meanMs
    if (mean === undefined || mean >= this.rt.s.pipelineTaskMs) return 1
    if (mean >= PIPELINE_ALWAYS_MS) return this.hooks.anyPeerIdle() ? 1 : 2
    if (mean >= TINY_TASK_MS) return 2
    return Math.min(MAX_DEPTH, Math.ceil(TINY_TASK_MS / Math.max(mean, TINY_TASK_MS / MAX_DEPTH)))
  }

  /**
   * Whether other owners' tasks held here may be handed on to a thief: while they are worth a hop
   * (Settings.handOnMinMs; the node's mean over every job it runs, not each job's), and always
   * while this node would not start them itself (its owner policy lends no slot, refuses other
   * owners' tasks, or is suspended), so that no task waits on a node that will not run it.
   */
  handsOn(): boolean {
    if (this.meanMs === undefined || this.meanMs >= this.rt.s.handOnMinMs) return true
    const p = this.policy
    return p.suspended || !p.accepts.foreign || p.foreignSlots < 1
  }

  /** The job specs held here (specs travel with batches). */
  spec(job: JobId): JobSpec | undefined {
    return this.jobs.get(job)?.spec
  }

  get(job: JobId, index: number): HeldTask | undefined {
    return this.jobs.get(job)?.tasks.get(index)
  }

  runningOf(job: JobId): number {
    return this.jobs.get(job)?.running ?? 0
  }

  /**
   * Takes custody of one attempt of a task (queued). Returns false if it was
   * refused (a job its owner cancelled) or an equal or newer attempt is held,
   * except that a later copy of the attempt held takes its place (returns
   * true): with a delayed duplicate of an earlier grant arriving first, this
   * node still answers for the newest copy it was handed, the one custody follows.
   */
  hold(spec: JobSpec, desc: TaskDescriptor): boolean {
    if (spec.owner !== this.rt.self && this.cancelled.has(spec.id)) return false
    const job = this.jobFor(spec)
    const cur = job.tasks.get(desc.index)
    if (cur !== undefined) {
      const copy = copyOf(desc.custody)
      if (cur.attempt === desc.attempt && copy > cur.copy) {
        cur.custody = desc.custody
        cur.copy = copy
        if (cur.state === 'queued') this.replaceDesc(cur, desc)
        return true
      }
      if (cur.attempt >= desc.attempt) return false
      cur.attempt = desc.attempt
      cur.custody = desc.custody
      cur.copy = copyOf(desc.custody)
      if (cur.state === 'queued') {
        this.replaceDesc(cur, desc)
        cur.runAttempt = desc.attempt
      }
      return true
    }
    const t: HeldTask = {
      job,
      jobId: spec.id,
      res: spec.resources,
      own: spec.owner === this.rt.self,
      slot: undefined as Slot | undefined,
      index: desc.index,
      attempt: desc.attempt,
      runAttempt: desc.attempt,
      desc,
      custody: desc.custody,
      copy: copyOf(desc.custody),
      state: 'queued',
      gpus: [],
    }
    job.tasks.set(desc.index, t)
    this.countBytes(t, 1)
    this.queue.push(t)
    return true
  }

  private replaceDesc(t: HeldTask, desc: TaskDescriptor): void {
    this.countBytes(t, -1)
    t.desc = desc
    this.countBytes(t, 1)
  }

  /** Adds (1) or removes (-1) a task of another owner from the bytes held for it. */
  private countBytes(t: HeldTask, sign: 1 | -1): void {
    if (t.own) return
    const n = sign * descBytes(t.desc)
    const owner = t.job.spec.owner
    this.foreignBytes += n
    const left = (this.bytesByOwner.get(owner) ?? 0) + n
    if (left > 0) this.bytesByOwner.set(owner, left)
    else this.bytesByOwner.delete(owner)
  }

  /**
   * Why a push from `from` must be refused whole before anything of it is held: a task this
   * node could never start (more CPUs, memory or GPUs than it has: held forever), or inputs
   * that would take what it holds for that owner (inputs and unacked results), or for all
   * owners, past Settings' maxHeldBytesPerOwner / maxHeldBytes. Otherwise a member could push
   * tasks faster than they run (or that never run), or never ack, until this node ran out of
   * memory.
   */
  pushLimit(from: PeerKey, batch: Batch): string | undefined {
    for (const job of batch.jobs) {
      const why = job.owner === this.rt.self ? undefined : this.neverFits(job)
      if (why !== undefined) return why
    }
    let bytes = 0
    for (const d of batch.tasks) bytes += descBytes(d)
    return this.pastBytes(from, bytes)
  }

  private neverFits(spec: JobSpec): string | undefined {
    const size = this.pool.size
    if (fitsNode(spec.resources, size)) return undefined
    const r = spec.resources
    return `job ${spec.id} needs ${r.cpu} CPU, ${r.memoryMB} MB, ${r.gpu} GPU; this node has ${size.slots} slots, ${size.memoryMB} MB, ${size.gpus} GPUs`
  }

  /**
   * Whether `more` bytes for `owner` would pass the limits: inputs held and results not yet acked
   * alike (an owner that never acks fills the outbox).
   */
  private pastBytes(owner: PeerKey, more: number): string | undefined {
    const s = this.rt.s
    const mine = (this.bytesByOwner.get(owner) ?? 0) + this.outbox.bytesFor(owner)
    if (mine + more > s.maxHeldBytesPerOwner)
      return `holds ${mine} bytes of task inputs and unacked results of ${owner}; ${more} more would pass the ${s.maxHeldBytesPerOwner} kept per owner`
    const all = this.foreignBytes + this.outbox.keptBytes
    if (all + more > s.maxHeldBytes)
      return `holds ${all} bytes of other owners' task inputs and unacked results; ${more} more would pass its ${s.maxHeldBytes}`
    return undefined
  }

  /**
   * Accepts a stolen or pushed batch; returns what to lease, per remote owner, and how many of
   * its tasks are held here now (not given back at once).
   */
  acceptBatch(
    batch: Batch,
    ownTask: (spec: JobSpec, d: TaskDescriptor) => void,
  ): { leases: Map<PeerKey, HeldKey[]>; taken: number } {
    const specs = new Map(batch.jobs.map((j) => [j.id, j]))
    const leases = new Map<PeerKey, HeldKey[]>()
    let taken = 0
    for (const d of batch.tasks) {
      const spec = specs.get(d.job) ?? this.spec(d.job)
      if (spec === undefined) continue
      if (spec.owner === this.rt.self) {
        ownTask(spec, d)
        taken++
        continue
      }
      this.hold(spec, d)
      const t = this.get(d.job, d.index)
      if (t?.attempt !== d.attempt) continue
      // The copy held now (a later one already here stays), so the lease names what custody follows.
      getOrCreate(leases, spec.owner, () => [] as HeldKey[]).push(
        heldKey(t.jobId, t.index, t.attempt, t.custody),
      )
      // Granted though our policy refuses it (the victim ignored our steal's `accepts`): never run it.
      const why = refusal(this.policy.accepts, spec)
      if (why !== undefined && t.state === 'queued') {
        this.rt.stats.policyRefused++
        this.giveBack(t, `refused here: ${why}`)
        continue
      }
      // A grant gets the checks a push gets before it is held (pushLimit), here after: a victim
      // decides what it grants, so one could hand over tasks that never start, or without end.
      const over = t.state === 'queued' ? (this.neverFits(spec) ?? this.pastBytes(spec.owner, 0)) : undefined
      if (over !== undefined) {
        this.rt.stats.policyRefused++
        this.giveBack(t, `refused here: ${over}`)
        continue
      }
      taken++
    }
    return { leases, taken }
  }

  /** Starts queued tasks while one fits the free means. */
  startRunnable(): void {
    if (this.queue.size === 0) return
    const depth = this.depth()
    const canStart = (r: Resources) => this.pool.canStart(r, depth)
    const laneOk: LaneFilter = (_job, own, r) => own || this.foreignRoom(r, depth)
    for (;;) {
      const t = this.queue.pop(canStart, false, laneOk)
      if (t === undefined) return
      this.start(t)
    }
  }

  /** Starts a backup copy of a task owned here and held elsewhere; false if it cannot run now. */
  startBackup(spec: JobSpec, desc: TaskDescriptor): boolean {
    if (this.get(spec.id, desc.index) !== undefined) return false
    if (!this.pool.canStart(spec.resources, 1)) return false
    this.hold(spec, desc)
    const t = this.get(spec.id, desc.index)
    if (t === undefined) return false
    this.queue.remove(t)
    this.start(t)
    return true
  }

  private start(t: HeldTask): void {
    t.state = 'running'
    t.runAttempt = t.desc.attempt
    t.gpus = this.pool.acquire(t.res)
    if (!t.own) this.foreignUsed += slotCost(t.res)
    this.running++
    t.job.running++
    this.rt.stats.tasksRun++
    this.rt.emit({ type: 'run-task', cause: this.rt.cause, job: t.job.spec, task: t.desc, gpus: t.gpus })
    if (t.own) this.hooks.localStart(t.jobId)
  }

  /** The executor reports a run; stale or cancelled runs are ignored. */
  finished(key: TaskKey, outcome: TaskOutcome): void {
    const t = this.get(key.job, key.index)
    if (t === undefined || t.state !== 'running' || t.runAttempt !== key.attempt) return
    const d = Math.max(0, outcome.durationMs)
    this.meanMs = this.meanMs === undefined ? d : this.meanMs + EWMA_ALPHA * (d - this.meanMs)
    this.detach(t)
    const result: TaskResult = {
      job: key.job,
      index: key.index,
      attempt: t.attempt,
      ranOn: this.rt.self,
      outcome,
    }
    if (t.custody !== undefined) result.custody = t.custody
    if (t.own) {
      this.gc(t.job)
      this.hooks.localResult(result)
      return
    }
    // Held until its owner acks, maybe long.
    if (outcome.status === 'ok') {
      const value = ownBytes(outcome.value)
      if (value !== outcome.value) result.outcome = { ...outcome, value }
    }
    this.outbox.add(t.job, result)
    this.gc(t.job)
  }

  /** Drops one held task: out of the queue, or cancelled if running. */
  drop(t: HeldTask): void {
    if (t.state === 'running') {
      this.rt.emit({
        type: 'cancel-task',
        cause: this.rt.cause,
        task: { job: t.jobId, index: t.index, attempt: t.runAttempt },
      })
    }
    this.detach(t)
    this.gc(t.job)
  }

  /** Drops every copy of a task held here (the owner has its result). */
  dropCopies(job: JobId, index: number): void {
    const t = this.get(job, index)
    if (t !== undefined) this.drop(t)
  }

  /** Drops everything of a job: queued, running and unacked results. */
  dropJob(job: JobId): void {
    const j = this.jobs.get(job)
    if (j === undefined) return
    for (const t of [...j.tasks.values()]) this.drop(t)
    this.outbox.removeJob(j)
    this.gc(j)
  }

  /** An owner cancelled a job: drop it and refuse its tasks from now on. */
  ownerCancelled(job: JobId): void {
    this.cancelled.set(job, true)
    this.dropJob(job)
  }

  /** An owner told us it cancelled a job (ignored unless it owns a job held here). */
  cancelFrom(from: PeerKey, job: JobId): void {
    if (this.spec(job)?.owner === from) this.ownerCancelled(job)
  }

  /**
   * Victim side: takes up to `n` queued tasks fitting `free`, rotating across
   * jobs. A copy whose custody chain is full (MAX_CUSTODY_LINKS) stays here.
   */
  take(n: number, free: Resources, ownOnly: boolean, laneOk?: LaneFilter): HeldTask[] {
    const out: HeldTask[] = []
    const kept: HeldTask[] = []
    const fit = (r: Resources) => fits(r, free)
    while (out.length < n) {
      const t = this.queue.pop(fit, ownOnly, laneOk)
      if (t === undefined) break
      if (!t.own && t.custody !== undefined && t.custody.links.length >= MAX_CUSTODY_LINKS) {
        kept.push(t)
        continue
      }
      this.detach(t)
      this.gc(t.job)
      out.push(t)
    }
    for (const t of kept) this.queue.push(t)
    return out
  }

  private detach(t: HeldTask): void {
    if (t.state === 'running') {
      this.pool.release(t.res, t.gpus)
      if (!t.own) this.foreignUsed -= slotCost(t.res)
      t.gpus = []
      this.running--
      t.job.running--
    } else {
      this.queue.remove(t)
    }
    this.countBytes(t, -1)
    t.job.tasks.delete(t.index)
  }

  private jobFor(spec: JobSpec): HeldJob {
    let job = this.jobs.get(spec.id)
    if (job === undefined) {
      job = { spec, tasks: new Map(), unacked: 0, running: 0 }
      this.jobs.set(spec.id, job)
      if (spec.owner !== this.rt.self) {
        getOrCreate(this.byOwner, spec.owner, () => new Set<HeldJob>()).add(job)
        if (this.leaseDueAt === undefined) this.leaseDueAt = this.rt.now + this.rt.s.leaseIntervalMs
      }
    }
    return job
  }

  private gc(job: HeldJob): void {
    if (job.tasks.size > 0 || job.unacked > 0) return
    if (this.jobs.get(job.spec.id) !== job) return
    this.jobs.delete(job.spec.id)
    const set = this.byOwner.get(job.spec.owner)
    if (set !== undefined) {
      set.delete(job)
      if (set.size === 0) this.byOwner.delete(job.spec.owner)
    }
  }

  // ---- leases --------------------------------------------------------------

  private holdingsFor(owner: PeerKey): HeldKey[] {
    const out: HeldKey[] = []
    for (const job of this.byOwner.get(owner) ?? []) {
      for (const t of job.tasks.values()) out.push(heldKey(t.jobId, t.index, t.attempt, t.custody))
    }
    out.push(...this.outbox.keys(owner))
    return out
  }

  private lease(owner: PeerKey): void {
    const holdings = this.holdingsFor(owner)
    if (holdings.length > 0) this.rt.emit({ type: 'send-lease', cause: this.rt.cause, to: owner, holdings })
  }

  sendLease(owner: PeerKey, holdings: HeldKey[]): void {
    if (holdings.length > 0) this.rt.emit({ type: 'send-lease', cause: this.rt.cause, to: owner, holdings })
  }

  /**
   * The owner's answer to a lease: drop the copies it names. A drop names the
   * copy the lease listed; by the time it arrives this node may hold a later
   * copy of the same attempt (it handed the task on and stole it back within
   * the round trip): that copy is not the one refused, and stays.
   */
  leaseAnswered(from: PeerKey, drop: CopyKey[], cancelledJobs: JobId[]): void {
    for (const k of drop) {
      const t = this.get(k.job, k.index)
      if (t !== undefined && t.job.spec.owner === from && t.attempt === k.attempt && sameCopy(t.copy, k))
        this.drop(t)
      this.outbox.remove(from, k, k.copy)
    }
    for (const job of cancelledJobs) this.cancelFrom(from, job)
  }

  /** An owner came (back): send what it is owed now. */
  peerConnected(peer: PeerKey): void {
    this.outbox.resend(peer, true)
    this.lease(peer)
  }

  /** Leases, resends and hand-backs due by now. */
  tick(): void {
    const now = this.rt.now
    const handBack = this.handBackDue()
    if (handBack !== undefined && handBack <= now) {
      const s = Math.round(this.policy.handBackAfterMs / 1000)
      this.handBackForeign(`handed back: the lending machine is in use (suspended ${s} s)`)
    }
    if (this.leaseDueAt !== undefined && this.leaseDueAt <= now) {
      for (const owner of this.byOwner.keys()) this.lease(owner)
      this.leaseDueAt = this.byOwner.size > 0 ? now + this.rt.s.leaseIntervalMs : undefined
    }
    this.outbox.resendDue()
  }

  nextDeadline(): number | undefined {
    let at: number | undefined
    for (const t of [this.outbox.nextDeadline(), this.leaseDueAt, this.handBackDue()]) {
      if (t !== undefined && (at === undefined || t < at)) at = t
    }
    return at
  }

  // ---- checks --------------------------------------------------------------

  *runningTasks(): Generator<HeldTask> {
    for (const job of this.jobs.values())
      for (const t of job.tasks.values()) if (t.state === 'running') yield t
  }

  check(invariant: (ok: boolean, msg: string) => void): void {
    this.pool.check(this.runningTasks())
    let queued = 0
    let running = 0
    for (const [id, job] of this.jobs) {
      let jobRunning = 0
      for (const t of job.tasks.values()) if (t.state === 'running') jobRunning++
      invariant(jobRunning === job.running, `job ${id} running count is off`)
      invariant(job.spec.id === id, 'held job under the wrong id')
      invariant(job.tasks.size > 0 || job.unacked > 0, `held job ${id} kept with nothing held`)
      for (const t of job.tasks.values()) {
        invariant(t.job === job && t.jobId === id, 'held task in the wrong job')
        if (t.state === 'queued') {
          queued++
          invariant(t.slot?.live === true, `queued task ${id}/${t.index} is not in the queue`)
          invariant(t.desc.attempt === t.attempt, 'queued task with a stale descriptor')
        } else {
          running++
          invariant(t.slot === undefined, `running task ${id}/${t.index} is still queued`)
        }
      }
    }
    invariant(queued === this.queue.size, `queue size ${this.queue.size} != ${queued} queued tasks`)
    invariant(running === this.running, `running count ${this.running} != ${running}`)
    let foreign = 0
    for (const t of this.runningTasks()) if (!t.own) foreign += slotCost(t.res)
    invariant(foreign === this.foreignUsed, `foreign slots ${this.foreignUsed} != ${foreign} held`)
    const bytes = new Map<PeerKey, number>()
    for (const job of this.jobs.values())
      for (const t of job.tasks.values())
        if (!t.own) bytes.set(job.spec.owner, (bytes.get(job.spec.owner) ?? 0) + descBytes(t.desc))
    let total = 0
    for (const [owner, n] of bytes) {
      total += n
      invariant((this.bytesByOwner.get(owner) ?? 0) === n, `bytes held for ${owner} miscounted`)
    }
    invariant(total === this.foreignBytes, `foreign bytes ${this.foreignBytes} != ${total} held`)
    invariant(this.outbox.bytesAddUp(), 'outbox byte counts do not match the results kept')
    const unacked = this.outbox.size
    let counted = 0
    for (const job of this.jobs.values()) counted += job.unacked
    invariant(unacked === counted, 'outbox size does not match unacked counts')
  }
}

/** The bytes a held task keeps in memory for its run: its input and the values of its dependencies. */
function descBytes(d: TaskDescriptor): number {
  let n = d.input.byteLength
  for (const v of d.depValues) n += v.byteLength
  return n
}
