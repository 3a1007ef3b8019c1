/**
 * The one place that calls the scheduler. It feeds NodeScheduler events from
 * the network, the executor, the API and the clock, and carries out the
 * commands it returns in one switch. One timer is armed from nextDeadline().
 * Replies to inbound requests (steal grants, lease answers, result acks) are
 * the commands the scheduler returns for that request's event.
 */
import { randomBytes } from 'node:crypto'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { newJobId } from '../domain/job-id.ts'
import { BundleSources } from '../executor/bundle-fetch.ts'
import {
  BlobStore,
  createLocalExecutor,
  type Executor,
  type ExecutorSandboxOptions,
  type RunOptions,
} from '../executor/index.ts'
import { sweepScratch } from '../executor/scratch.ts'
import type { CapacityAdvert } from '../protocol/advert/codec.ts'
import { BLOB_PROTOCOL } from '../protocol/blob/codec.ts'
import { RemoteRequestError } from '../protocol/errors.ts'
import { CostBudget } from '../protocol/rate-limit.ts'
import { POLICY_REFUSED } from '../protocol/steal/codec.ts'
import {
  lateGrant,
  leaseAnswered,
  pushFailed,
  pushRefused,
  requestLost,
  resultsAcked,
  resultsSendFailed,
  stealGranted,
} from '../scheduler/hearing.ts'
import type { MemberReason, TaskWhy } from '../scheduler/index.ts'
import { NodeScheduler } from '../scheduler/index.ts'
import type {
  Batch,
  Command,
  FileEntry,
  FinishedRun,
  HeldKey,
  JobId,
  JobSpec,
  NodePolicy,
  OutputSpec,
  SchedulerAdvert,
  SchedulerEvent,
  TaskInput,
  TaskKey,
  TaskOutcome,
  TaskResult,
} from '../scheduler/types.ts'
import type { Adverts } from './adverts.ts'
import { type Clock, type ClockTimer, systemClock } from './clock.ts'
import type { NodeConfig } from './config/schema.ts'
import type { GridLibp2p } from './create-node.ts'
import { CustodyCredentialsService, loadOrCreateCustodyKey } from './custody-credentials.ts'
import { loadIdentity } from './data-dir.ts'
import { hasBlobRefs } from './files/big-values.ts'
import { FilesService } from './files/service.ts'
import { registerInbound } from './inbound.ts'
import { JobAfter } from './job-after.ts'
import { JobHub } from './job-hub.ts'
import type { Logger } from './logger.ts'
import { PeerLinks } from './peer-links.ts'
import { type SignalingExecutor, TaskSignals } from './policy/signals.ts'
import type { ProbedCapacity } from './probe/capacity.ts'
import { JobStore } from './store.ts'

export interface DriverOptions {
  config: NodeConfig
  capacity: ProbedCapacity
  log: Logger
  dbPath: string
  /** Worker entry for a bundled daemon. */
  workerUrl?: URL
  /** Whether a peer is a member of the mesh (job owners of pushed and stolen batches must be). Default: everyone. */
  isMember?: (peer: string) => boolean
  /** This node's libp2p key (signs custody hand-offs). Default: loaded from the data dir's identity.key. */
  privateKey?: PrivateKey
  /** Blob cache quota in bytes (policy.json `blobQuota`). */
  blobQuota?: number
  /** The sandbox probe's verdict and host (daemon.ts); absent: no sandbox, foreign tasks run unsandboxed. */
  sandbox?: ExecutorSandboxOptions
  /** Time and timers (default: the system clock; tests pass a ManualClock). */
  clock?: Clock
}

/** Settings from policy.json the driver reads (at each run, and at each housekeeping round). */
export interface DriverPolicy {
  /** Tasks from other nodes may use the network. */
  network: boolean
  /** This node's own tasks go into the sandbox too. */
  sandboxOwn: boolean
  /** Finished job records older than this are pruned. */
  jobRetentionMs: number
  /** Blob cache quota (bytes). */
  blobQuota: number
}

/** How often old job records are pruned and the blob cache is brought under its quota. */
const HOUSEKEEPING_MS = 3_600_000

/** Messages the driver refused before they reached the scheduler. */
export interface DriverRefusals {
  /** Pushes refused: a job owner other than the sender, or not a member. */
  refusedPushes: number
  /** Stolen batches dropped: a job owner not a member. */
  refusedBatches: number
}

export interface SubmitRequest {
  name: string
  work: JobSpec['work']
  resources: JobSpec['resources']
  timeoutMs: number
  retries: number
  maxAttempts: number
  tasks: TaskInput[]
  /** Input files (already in this node's blob store) and outputs to bring back. */
  files?: FileEntry[]
  outputs?: OutputSpec
}

const taskKey = (t: { job: string; index: number }) => `${t.job}#${t.index}`

/** Sees every scheduler step (metrics, the dashboard). Called synchronously: must be quick and not throw. */
export interface DriverObserver {
  /** The event as fed (with its unique cause) and the commands the scheduler returned for it. */
  step?(event: SchedulerEvent, commands: readonly Command[]): void
  /** Blob bytes fetched from a peer or served to one. */
  blob?(direction: 'fetched' | 'served', bytes: number): void
}

/** A run that ended, with what its log line names. */
interface EndedRun extends FinishedRun {
  /** The job's owner. */
  owner: string
  /** The cause of the run-task command that started it. */
  startedBy: string
}

export class Driver {
  readonly hub: JobHub
  /** Jobs waiting for tasks of other jobs owned here (futures, graphs). */
  readonly after: JobAfter
  blobs!: BlobStore
  /** Job files: staging inputs, holding and taking in outputs, serving ranges (set by start()). */
  files?: FilesService
  /** Owner: outputs and big task inputs its job store refers to (kept out of the blob cache's eviction). */
  private ownedOutputs = new Set<string>()

  /** Owner, at submit: task inputs over 1 MiB become blob references (kept while the job's record is). */
  async bigInputs(tasks: Array<{ input: Uint8Array }>): Promise<void> {
    if (this.files === undefined) return
    for (const h of await this.files.bigInputs(tasks)) this.ownedOutputs.add(h)
  }
  private readonly node: GridLibp2p
  private readonly opts: DriverOptions
  private readonly self: string
  private readonly sched: NodeScheduler
  private readonly links: PeerLinks
  private executor?: Executor
  private adverts?: Adverts
  private timer?: ClockTimer
  private timerAt = Number.POSITIVE_INFINITY
  private stopped = false
  private readonly running = new Map<string, { abort: AbortController; gpus: number[] }>()
  /** Runs that ended and wait for the microtask that feeds them to the scheduler together (ended). */
  private endedRuns: EndedRun[] = []
  private creds?: CustodyCredentialsService
  private readonly isMember: (peer: string) => boolean
  private readonly refusals: DriverRefusals = { refusedPushes: 0, refusedBatches: 0 }
  /** Where bundles come from when the cache lacks them (the job's owner first; set by start()). */
  private bundles?: BundleSources
  private readonly clock: Clock
  /** Owner policy: running tasks stopped with SIGSTOP (task key → key). */
  private readonly suspended = new Map<string, TaskKey>()
  private signals?: TaskSignals
  private policy?: () => DriverPolicy
  private housekeeping?: ClockTimer
  /** Bundles of active jobs owned here stay in the blob cache (unpin when the job ends). */
  private readonly jobPins = new Map<JobId, () => void>()
  private readonly observers: DriverObserver[] = []
  /** Makes every event's cause unique: `<label>#<n>` (logs and task stories carry it). */
  private causeSeq = 0

  constructor(node: GridLibp2p, opts: DriverOptions) {
    this.node = node
    this.opts = opts
    this.clock = opts.clock ?? systemClock
    this.self = node.peerId.toString()
    this.isMember = opts.isMember ?? (() => true)
    this.hub = new JobHub(new JobStore(opts.dbPath))
    this.after = new JobAfter(this, this.self)
    this.sched = new NodeScheduler({
      self: this.self,
      capacity: {
        slots: opts.capacity.slots,
        memoryMB: opts.capacity.memoryTotalMB,
        gpus: opts.capacity.gpus,
      },
      seed: randomBytes(4).readUInt32LE(0),
      advertIntervalMs: opts.config.advertIntervalMs,
    })
    this.links = new PeerLinks(node, {
      // Granted after we gave up: ours all the same (request id 0 matches no steal in flight).
      onLateBatch: (from, batch) => {
        if (this.stolenBatchAllowed(from, batch))
          this.feed(lateGrant(from, batch, 'late-steal', this.clock.now()))
      },
    })
  }

  attachAdverts(adverts: Adverts): void {
    this.adverts = adverts
  }

  async start(): Promise<void> {
    const dataDir = this.opts.config.dataDir
    const privateKey = this.opts.privateKey ?? (await loadIdentity(dataDir))
    if (peerIdFromPrivateKey(privateKey).toString() !== this.self)
      throw new Error('the private key given to the driver is not this node’s identity')
    this.creds = new CustodyCredentialsService({
      self: this.self,
      secret: loadOrCreateCustodyKey(dataDir),
      privateKey,
    })
    this.blobs = await BlobStore.open(this.opts.config.dataDir, { quota: this.opts.blobQuota })
    this.ownedOutputs = this.hub.store.outputHashes()
    for (const h of this.hub.store.inputRefs()) this.ownedOutputs.add(h)
    this.blobs.keep = (hash) => this.ownedOutputs.has(hash)
    this.files = new FilesService({
      self: this.self,
      blobs: this.blobs,
      // Members we are connected to, and those whose adverts we see (dialled when asked).
      peers: () =>
        [
          ...new Set([
            ...this.node.getPeers().map(String),
            ...(this.adverts?.table.list().map((e) => e.peerId) ?? []),
          ]),
        ].filter((p) => p !== this.self && this.isMember(p)),
      opener: (peer) => this.links.opener(peer, BLOB_PROTOCOL),
      fetchSmall: (peer, hash) => this.links.fetchBlob(peer, hash),
      storedOutputs: (job) => this.hub.store.outputsOf(job),
      onBytes: (direction, n) => this.notify((o) => o.blob?.(direction, n)),
      log: (msg, fields) => this.opts.log.debug(fields, msg),
    })
    const swept = await sweepScratch(dataDir)
    if (swept > 0) this.opts.log.info({ swept }, 'removed scratch directories left by an earlier run')
    this.signals = new TaskSignals(dataDir, () => this.executor as SignalingExecutor | undefined)
    const bundles = new BundleSources({
      self: this.self,
      peers: () => this.node.getPeers().map(String),
      fetchBlob: (peer, hash) => this.links.fetchBlob(peer, hash),
      onFetched: (bytes) => this.notify((o) => o.blob?.('fetched', bytes)),
      onError: (peer, hash, err) =>
        this.opts.log.debug({ peer, hash, err: err.message }, 'bundle fetch failed'),
    })
    this.bundles = bundles
    // `self`: the sandboxing executor tells other nodes' tasks (sandboxed) from ours by the job's owner.
    const executorOptions = {
      dataDir: this.opts.config.dataDir,
      slots: this.opts.capacity.slots,
      blobs: this.blobs,
      fetchBlob: (hash: string) => bundles.fetch(hash),
      workerUrl: this.opts.workerUrl,
      self: this.self,
      sandbox: this.opts.sandbox,
    }
    this.executor = createLocalExecutor(executorOptions)
    await this.registerProtocols()
    this.resumeJobs()
  }

  async stop(): Promise<void> {
    this.stopped = true
    this.clock.clear(this.timer)
    this.clock.clear(this.housekeeping)
    for (const r of this.running.values()) r.abort.abort()
    this.links.close()
    await this.executor?.close()
    await this.hub.flushed().catch(() => {})
    this.hub.store.close()
  }

  // -- what the rest of the node asks ------------------------------------------------

  /** The trust and owner policy in force changed (src/node/policy/controller.ts). */
  setPolicy(policy: NodePolicy): void {
    this.feed({ type: 'policy-changed', at: this.clock.now(), cause: 'policy', policy })
  }

  /**
   * Whether tasks from other nodes can be accepted: the sandboxing executor
   * says (`sandboxStatus()`); an executor without one accepts them.
   */
  sandboxState(): { acceptsForeign: boolean; reason?: string } {
    const ex = this.executor as
      | { sandboxStatus?: () => { acceptsForeign: boolean; reason: string } }
      | undefined
    if (typeof ex?.sandboxStatus !== 'function') return { acceptsForeign: true }
    const s = ex.sandboxStatus()
    return { acceptsForeign: s.acceptsForeign, reason: s.reason }
  }

  /** Where runs read network / sandboxOwn, and housekeeping its limits, from; starts housekeeping. */
  attachPolicy(get: () => DriverPolicy): void {
    this.policy = get
    this.clock.clear(this.housekeeping)
    this.housekeeping = this.clock.setInterval(() => void this.keepHouse(), HOUSEKEEPING_MS)
    this.housekeeping.unref?.()
    void this.keepHouse()
  }

  /** Prunes job records past their retention and evicts blobs over the quota. */
  async keepHouse(): Promise<void> {
    const p = this.policy?.()
    if (p === undefined || this.stopped) return
    try {
      const pruned = this.pruneJobs(p.jobRetentionMs)
      if (pruned.length > 0) this.opts.log.info({ pruned: pruned.length }, 'pruned old job records')
      this.blobs.quota = p.blobQuota
      const evicted = await this.blobs.evict()
      if (evicted > 0) this.opts.log.info({ evicted, bytes: this.blobs.size }, 'evicted blobs over the quota')
    } catch (err) {
      this.opts.log.warn({ err: (err as Error).message }, 'housekeeping failed')
    }
  }

  /** How long finished job records are kept (policy.json `jobRetentionMs`; 30 days without a policy). */
  retentionMs(): number {
    return this.policy?.().jobRetentionMs ?? 30 * 86_400_000
  }

  /** Deletes finished jobs older than `olderThanMs` from the store; returns their ids. */
  pruneJobs(olderThanMs: number): string[] {
    const pruned = this.hub.store.pruneJobs(this.clock.now() - olderThanMs)
    if (pruned.length > 0) {
      this.ownedOutputs = this.hub.store.outputHashes()
      for (const h of this.hub.store.inputRefs()) this.ownedOutputs.add(h)
    }
    return pruned
  }

  schedulerAdvert(): SchedulerAdvert {
    return this.sched.advert()
  }

  busyGpus(): Set<number> {
    return new Set([...this.running.values()].flatMap((r) => r.gpus))
  }

  stats() {
    const s = this.sched.stats()
    return {
      ...s,
      refusedPushes: s.refusedPushes + this.refusals.refusedPushes,
      refusedBatches: this.refusals.refusedBatches,
    }
  }

  jobProgress(job: JobId) {
    return this.sched.jobProgress(job)
  }

  /** Where a task of a job owned here stands, its story, and each member's reason (gridnode why). */
  why(job: JobId, index: number): TaskWhy {
    return this.sched.why(job, index)
  }

  /** Each member's reason it cannot take a task of `spec` now (this node first). */
  memberReasons(spec: JobSpec): MemberReason[] {
    return this.sched.memberReasons(spec)
  }

  peerConnected(peer: string): void {
    this.feed({ type: 'peer-connected', at: this.clock.now(), cause: 'advert', peer })
  }

  advertReceived(peer: string, advert: CapacityAdvert): void {
    const rttMs = this.adverts?.table.get(peer)?.rttMs
    this.feed({
      type: 'advert-received',
      at: this.clock.now(),
      cause: 'advert',
      peer,
      advert: advert.sched,
      rttMs,
    })
  }

  peerGone(peer: string): void {
    this.links.drop(peer)
    this.feed({ type: 'peer-gone', at: this.clock.now(), cause: 'peer-gone', peer })
  }

  /**
   * A new job from the local API: stored first, then scheduled. `id`: one the client chose
   * (checked unused by the API); `stored`: already in the store (a job that waited for others).
   */
  /** Ed25519 checks of custody links run so far (metrics). */
  linkVerifications(): number {
    return this.creds?.linkVerifications ?? 0
  }

  submit(req: SubmitRequest, o: { id?: JobId; stored?: boolean } = {}): { id: JobId; total: number } {
    const id = o.id ?? newJobId()
    const job: JobSpec = {
      id,
      owner: this.self,
      work: req.work,
      resources: req.resources,
      timeoutMs: req.timeoutMs,
      maxAttempts: req.maxAttempts,
      retries: req.retries,
      ...(req.files ? { files: req.files } : {}),
      ...(req.outputs ? { outputs: req.outputs } : {}),
    }
    if (!o.stored) this.hub.store.createJob(job, req.name, req.tasks, this.clock.now())
    this.pinJob(job)
    const event: SchedulerEvent = {
      type: 'job-submitted',
      at: this.clock.now(),
      cause: `submit:${id}`,
      job,
      tasks: req.tasks,
    }
    this.feed(event)
    this.opts.log.info({ job: id, tasks: req.tasks.length, cause: event.cause }, 'job submitted')
    return { id, total: req.tasks.length }
  }

  private pinJob(job: JobSpec): void {
    if (this.blobs === undefined) return
    const hashes = [
      ...(job.work.kind === 'function' ? [job.work.bundle] : []),
      ...(job.files ?? []).flatMap((f) => (f.chunks ? [f.sha256, f.chunks] : [f.sha256])),
    ]
    if (hashes.length === 0) return
    const unpins = hashes.map((h) => this.blobs.pin(h))
    this.jobPins.set(job.id, () => {
      for (const u of unpins) u()
    })
  }

  cancel(job: JobId): void {
    this.feed({ type: 'job-cancelled', at: this.clock.now(), cause: `cancel:${job}`, job })
  }

  /** Adds an observer of scheduler steps and blob transfers; returns its removal. */
  observe(o: DriverObserver): () => void {
    this.observers.push(o)
    return () => {
      const i = this.observers.indexOf(o)
      if (i >= 0) this.observers.splice(i, 1)
    }
  }

  private notify(f: (o: DriverObserver) => void): void {
    for (const o of this.observers) {
      try {
        f(o)
      } catch (err) {
        this.opts.log.warn({ err }, 'a scheduler observer failed')
      }
    }
  }

  // -- the one door into the scheduler -----------------------------------------------

  private feed(event: SchedulerEvent): Command[] {
    if (this.stopped) return []
    const hash = event.cause.indexOf('#')
    event.cause = `${hash < 0 ? event.cause : event.cause.slice(0, hash)}#${(++this.causeSeq).toString(36)}`
    let commands: Command[]
    try {
      commands = this.sched.handle(event)
    } catch (err) {
      this.opts.log.error({ err, event: event.type, cause: event.cause }, 'scheduler rejected an event')
      return []
    }
    if (this.observers.length > 0) this.notify((o) => o.step?.(event, commands))
    for (const c of commands) this.execute(c)
    this.arm()
    return commands
  }

  private arm(): void {
    const next = this.sched.nextDeadline()
    if (next === undefined || next >= this.timerAt) return
    this.clock.clear(this.timer)
    this.timerAt = next
    this.timer = this.clock.setTimeout(
      () => {
        this.timerAt = Number.POSITIVE_INFINITY
        this.feed({ type: 'tick', at: this.clock.now(), cause: 'timer' })
        this.arm()
      },
      Math.max(0, next - this.clock.now()),
    )
  }

  private execute(c: Command): void {
    switch (c.type) {
      case 'send-steal':
        return this.sendSteal(c)
      case 'reply-steal':
      case 'ack-results':
      case 'answer-lease':
      case 'refuse-push':
        // Answers to inbound requests: their handlers pick them from the returned commands.
        return
      case 'push-batch':
        if (this.opts.log.isLevelEnabled('debug'))
          this.opts.log.debug({ peer: c.to, tasks: c.batch.tasks.length, cause: c.cause }, 'pushing tasks')
        return this.pushBatch(c.to, c.batch, c.cause)
      case 'run-task':
        return this.runTask(c)
      case 'cancel-task':
        this.running.get(taskKey(c.task))?.abort.abort()
        // A stopped process group would sit on its SIGTERM: let it go on to die.
        if (this.suspended.delete(taskKey(c.task))) this.signals?.signal([c.task], 'SIGCONT')
        return
      case 'suspend-tasks':
        for (const t of c.tasks) this.suspended.set(taskKey(t), t)
        this.opts.log.info(
          { tasks: c.tasks.length, stopped: this.signals?.signal(c.tasks, 'SIGSTOP') ?? 0, cause: c.cause },
          'owner policy: suspended tasks from other nodes',
        )
        return
      case 'resume-tasks':
        for (const t of c.tasks) this.suspended.delete(taskKey(t))
        this.opts.log.info(
          { tasks: c.tasks.length, continued: this.signals?.signal(c.tasks, 'SIGCONT') ?? 0, cause: c.cause },
          'owner policy: resumed tasks from other nodes',
        )
        return
      case 'send-results':
        return this.links.queueResults(c.to, c.results, (to, results) => this.sendResults(to, results))
      case 'persist-results':
        for (const r of c.results)
          if (r.outcome.status === 'ok')
            for (const f of r.outcome.outputs ?? []) this.ownedOutputs.add(f.sha256)
        void this.hub.persist(c.results).catch((err) => this.opts.log.error({ err }, 'cannot write results'))
        return
      case 'send-lease':
        return this.sendLease(c.to, c.holdings)
      case 'send-cancel':
        this.links
          .get(c.to)
          .lease.cancel({ job: c.job })
          .catch((err: Error) => this.opts.log.debug({ to: c.to, err: err.message }, 'cancel not delivered'))
        return
      case 'publish-advert':
        this.adverts?.publish()
        return
      case 'job-progress':
        return this.hub.setProgress(c.progress)
      case 'job-finished':
        this.files?.jobEnded(c.job)
        this.jobPins.get(c.job)?.()
        this.jobPins.delete(c.job)
        this.opts.log.info({ status: c.status, ...c.progress, cause: c.cause }, 'job finished')
        return this.hub.finish(c.job, c.status, c.progress)
      case 'job-blocked':
        if (c.reason)
          this.opts.log.warn({ job: c.job, reason: c.reason, cause: c.cause }, 'job cannot be placed')
        return this.hub.setBlocked(c.job, c.reason)
      default:
        assertNever(c)
    }
  }

  // -- commands that do I/O ------------------------------------------------------------

  private sendSteal(c: Extract<Command, { type: 'send-steal' }>): void {
    const { to, requestId } = c
    this.links
      .get(to)
      .steal.steal({ free: c.free, max: c.max, accepts: c.accepts })
      .then(
        ({ batch }) =>
          this.stolenBatchAllowed(to, batch)
            ? this.feed(stealGranted(to, requestId, batch, c.cause, this.clock.now()))
            : this.feed(requestLost(c, 'batch refused: a job owner is not a member', this.clock.now())!),
        (err: Error) => this.feed(requestLost(c, err.message, this.clock.now())!),
      )
  }

  /** Every job of a stolen batch is owned by a member (owner IDs are checked at decode); else it is dropped whole. */
  private stolenBatchAllowed(from: string, batch: Batch): boolean {
    const bad = batch.jobs.find((j) => !this.isMember(j.owner))
    if (bad === undefined) return true
    this.refusals.refusedBatches++
    this.opts.log.warn(
      { peer: from, job: bad.id, owner: bad.owner, tasks: batch.tasks.length },
      'dropped a stolen batch: its job owner is not a member',
    )
    return false
  }

  /** Why a push from `from` is refused, or undefined: only a member pushes, and only jobs it owns. */
  private pushRefusal(from: string, batch: Batch): string | undefined {
    if (!this.isMember(from)) return 'the sender is not a member'
    for (const j of batch.jobs) {
      if (j.owner !== from) return `job ${j.id} is owned by ${j.owner}, not the sender`
      if (!this.isMember(j.owner)) return `job ${j.id} has an owner that is not a member`
    }
    return undefined
  }

  /** The batch as it leaves for `to`, with custody credentials (unchanged before start). */
  private stamp(batch: Batch, to: string): Batch {
    // Dependency values over 1 MiB leave as blob references (the receiver fetches them by hash).
    if (this.files !== undefined) batch = this.files.outgoingBatch(batch)
    return this.creds === undefined || batch.tasks.length === 0 ? batch : this.creds.handOff(batch, to)
  }

  private pushBatch(to: string, batch: Batch, cause: string): void {
    // Heard with the push's own cause (src/scheduler/hearing.ts).
    this.links
      .get(to)
      .steal.push({ batch: this.stamp(batch, to) })
      .catch((err: Error) => {
        if (err instanceof RemoteRequestError && err.remoteCode === POLICY_REFUSED) {
          this.opts.log.info(
            { peer: to, tasks: batch.tasks.length, reason: err.message, cause },
            'push refused by policy',
          )
          this.feed(pushRefused(to, batch, err.message, cause, this.clock.now()))
        } else {
          this.feed(pushFailed(to, batch, err.message, cause, this.clock.now()))
        }
      })
  }

  private sendResults(to: string, results: TaskResult[]): Promise<void> {
    return this.links
      .get(to)
      .result.send({ results: results.map(wireResult) })
      .then(
        (ack) => {
          this.files?.acked(ack.tasks)
          this.feed(resultsAcked(to, ack.tasks, 'ack', this.clock.now()))
        },
        (err: Error) => {
          this.opts.log.debug(
            { to, n: results.length, err: err.message },
            'results not delivered; will resend',
          )
          this.feed(resultsSendFailed(to, results, 'send', this.clock.now()))
        },
      )
  }

  private sendLease(to: string, holdings: HeldKey[]): void {
    this.links
      .get(to)
      .lease.lease({ holdings })
      .then(
        (answer) => {
          this.feed(leaseAnswered(to, answer.drop, answer.cancelledJobs, 'lease', this.clock.now()))
          // A drop naming an older copy than the one whose result is owed leaves that result (and
          // the outputs it refers to) in the outbox: pins follow the scheduler's decision.
          this.files?.acked(answer.drop.filter((k) => !this.sched.owesResult(to, k)))
        },
        (err: Error) => this.opts.log.debug({ to, err: err.message }, 'lease not delivered'),
      )
  }

  private runTask(c: Extract<Command, { type: 'run-task' }>): void {
    const key = taskKey(c.task)
    const abort = new AbortController()
    this.running.set(key, { abort, gpus: c.gpus })
    let unpin: (() => void) | undefined
    if (c.job.work.kind === 'function') {
      this.bundles?.ownedBy(c.job.work.bundle, c.job.owner)
      unpin = this.blobs.pin(c.job.work.bundle)
    }
    const { job, index, attempt } = c.task
    const log = this.opts.log
    if (log.isLevelEnabled('debug'))
      log.debug({ job, task: index, attempt, peer: c.job.owner, cause: c.cause }, 'task started')
    // Flags for the sandboxing executor: whose task, whether it is sandboxed, whether it may use the network.
    const foreign = c.job.owner !== this.self
    const rp = this.policy?.() ?? { network: false, sandboxOwn: false }
    const options: RunOptions & { foreign: boolean; sandboxed: boolean; network: boolean } = {
      gpus: c.gpus,
      signal: abort.signal,
      foreign,
      sandboxed: foreign || rp.sandboxOwn,
      network: foreign ? rp.network : true,
    }
    const files = this.files
    const run = (): Promise<TaskOutcome> => {
      // The common case starts at once, as before files existed: no files, an inline input.
      if (files === undefined) return this.executor!.run(c.job, c.task, options)
      if (c.job.files === undefined && c.job.outputs === undefined && !hasBlobRefs(c.task)) {
        const ran = this.executor!.run(c.job, c.task, options)
        return c.job.owner === this.self ? ran : ran.then((o) => files.outgoing(c.task, o))
      }
      return runWithFiles(files)
    }
    const runWithFiles = async (files: FilesService): Promise<TaskOutcome> => {
      const started = this.clock.monotonic()
      let task = c.task
      try {
        task = await files.resolveInput(c.job, c.task, abort.signal)
      } catch (err) {
        if (abort.signal.aborted) return { status: 'rejected', error: 'cancelled', durationMs: 0 }
        return {
          status: 'crashed',
          error: `input value unavailable: ${(err as Error).message}`,
          durationMs: this.clock.monotonic() - started,
        }
      }
      if (c.job.files === undefined && c.job.outputs === undefined) {
        const outcome = await this.executor!.run(c.job, task, options)
        return c.job.owner === this.self ? outcome : files.outgoing(c.task, outcome)
      }
      let prepared: Awaited<ReturnType<FilesService['prepare']>>
      try {
        prepared = await files.prepare(c.job, c.task, abort.signal)
      } catch (err) {
        if (abort.signal.aborted) return { status: 'rejected', error: 'cancelled', durationMs: 0 }
        // Infrastructure: the owner retries it (elsewhere, maybe) up to the job's maxAttempts.
        return {
          status: 'crashed',
          error: `input files unavailable: ${(err as Error).message}`,
          durationMs: this.clock.monotonic() - started,
        }
      }
      try {
        let outcome = await this.executor!.run(c.job, task, { ...options, files: prepared.files })
        if (outcome.status === 'ok' && outcome.outputs !== undefined) {
          if (c.job.owner === this.self) {
            // Our own job: the outputs are in our store already; only the name check remains.
            const [r] = await files.intake(
              this.self,
              [{ job, index, attempt, ranOn: this.self, outcome }],
              (id) => (id === c.job.id ? c.job : undefined),
            )
            outcome = r.outcome
          } else files.holdOutputs(c.task, outcome.outputs)
        }
        return c.job.owner === this.self ? outcome : files.outgoing(c.task, outcome)
      } finally {
        prepared.release()
      }
    }
    run()
      .catch(
        (err: Error): TaskOutcome => ({
          status: 'crashed',
          error: `node error: ${err.message}`,
          durationMs: 0,
        }),
      )
      .then((outcome) => {
        unpin?.()
        this.suspended.delete(key)
        if (this.running.get(key)?.abort === abort) this.running.delete(key)
        this.ended({ task: { job, index, attempt }, outcome, owner: c.job.owner, startedBy: c.cause })
      })
  }

  /**
   * A run ended. Runs that end together (the worker pool settles a batch of results at once) reach
   * the scheduler as one step, in a microtask queued at the first of them (it runs after the
   * others): one persist-results and one job-progress for the lot, not one of each per task. Their
   * log lines share the step's cause.
   */
  private ended(run: EndedRun): void {
    if (this.endedRuns.length === 0) queueMicrotask(() => this.feedEnded())
    this.endedRuns.push(run)
  }

  private feedEnded(): void {
    const runs = this.endedRuns
    this.endedRuns = []
    const at = this.clock.now()
    const event: SchedulerEvent =
      runs.length === 1
        ? { type: 'task-finished', at, cause: 'run', task: runs[0].task, outcome: runs[0].outcome }
        : { type: 'tasks-finished', at, cause: 'run', finished: runs }
    this.feed(event)
    const log = this.opts.log
    const debug = log.isLevelEnabled('debug')
    for (const { task, outcome, owner, startedBy } of runs) {
      if (!debug && outcome.status === 'ok') continue
      const fields = {
        job: task.job,
        task: task.index,
        attempt: task.attempt,
        peer: owner,
        status: outcome.status,
      }
      const more = { ms: Math.round(outcome.durationMs), cause: event.cause, startedBy }
      if (outcome.status === 'ok') log.debug({ ...fields, ...more }, 'task ended')
      else log.info({ ...fields, ...more, error: outcome.error.slice(0, 500) }, 'task ended')
    }
  }

  // -- inbound protocol requests (src/node/inbound.ts) --------------------------------

  private registerProtocols(): Promise<void> {
    return registerInbound(this.node, {
      self: this.self,
      isMember: (peer) => this.opts.isMember?.(peer) ?? true,
      log: this.opts.log,
      clock: this.clock,
      feed: (event) => this.feed(event),
      stats: () => this.sched.stats(),
      needsPath: (from, key, result) => this.sched.needsPath(from, key, result),
      mayBring: (from, key, hasPath) => this.sched.mayBring(from, key, hasPath),
      creds: () => this.creds,
      stamp: (batch, to) => this.stamp(batch, to),
      pushRefusal: (from, batch) => this.pushRefusal(from, batch),
      refusedPush: () => {
        this.refusals.refusedPushes++
      },
      files: () => this.files,
      ownedJob: (id) => {
        const rec = this.hub.store.job(id)
        return rec !== undefined && rec.spec.owner === this.self ? rec.spec : undefined
      },
      flushed: () => this.hub.flushed(),
      blobs: () => this.blobs,
      served: (bytes) => this.notify((o) => o.blob?.('served', bytes)),
      // Real time, whatever the driver's clock: what it measures is the event loop's.
      cost: new CostBudget({
        msPerSecond: this.opts.config.peerCostMsPerSecond,
        burstMs: this.opts.config.peerCostBurstMs,
      }),
    })
  }

  /** Jobs this node owned when it last stopped (or died) resume here. */
  private resumeJobs(): void {
    for (const record of this.hub.store.unfinishedJobs()) {
      if (this.after.resume(record)) continue
      const finished = this.hub.store
        .results(record.id, 0, Number.MAX_SAFE_INTEGER)
        .map((r) => ({ index: r.index, ok: r.ok, value: r.value ?? undefined }))
      // A job restored under a new peer ID would never get its results: keep the old owner only if it is us.
      const job: JobSpec = { ...record.spec, owner: this.self }
      this.pinJob(job)
      this.opts.log.info(
        { job: job.id, done: finished.length, total: record.total },
        'resuming an unfinished job',
      )
      this.feed({
        type: 'job-restored',
        at: this.clock.now(),
        cause: `restore:${job.id}`,
        job,
        tasks: this.hub.store.tasks(job.id),
        finished,
      })
    }
  }
}

/**
 * A result's custody credentials matter to the owner only when it handed the
 * task to someone else (a chain with links); for a task the owner handed to
 * us directly it recorded us as the holder. Leaving them out saves ~80 bytes
 * per result; after an owner restart our lease (which carries them) comes first.
 */
function wireResult(r: TaskResult): TaskResult {
  if (r.custody === undefined || r.custody.links.length > 0) return r
  const { custody: _, ...rest } = r
  return rest
}

function assertNever(x: never): never {
  throw new Error(`unhandled command ${JSON.stringify(x)}`)
}
