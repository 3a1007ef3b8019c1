/**
 * An in-memory mesh of NodeSchedulers on a virtual clock, for property tests:
 * a time-ordered event heap, a network that delays, reorders, duplicates and
 * loses messages (a lost request gives its sender the matching *-failed event;
 * a lost fire-and-forget message vanishes), an executor with scripted
 * outcomes, node crashes and restarts (an owner restarts from what it
 * persisted, through job-restored), a fault phase and then a fault-free
 * liveness phase run to completion under a step budget.
 *
 * Built on the simulator's core (simulations/core): its event heap orders
 * events by (time, insertion) and its seeded Rng is the scheduler's own
 * mulberry32, so one seed decides everything, as in `npm run sim`; what each
 * end of a message hears comes from src/scheduler/hearing.ts, as in the
 * daemon and the simulator. Checkers run after every step.
 */

import { EventHeap } from '../../simulations/core/heap.ts'
import { Rng } from '../../simulations/core/rng.ts'
import {
  type AnswerCommand,
  answerHeard,
  answerLost,
  type Carried,
  type RequestCommand,
  requestHeard,
  requestLost,
} from '../../src/scheduler/hearing.ts'
import type {
  Capacity,
  Command,
  JobId,
  JobSpec,
  JobStatus,
  PeerKey,
  SchedulerEvent,
  TaskInput,
  TaskKey,
  TaskOutcome,
  TaskResult,
} from '../../src/scheduler/index.ts'
import {
  handOff,
  NodeScheduler,
  TRUSTED_SIGNER,
  trustedHoldings,
  trustedResults,
} from '../../src/scheduler/index.ts'

export interface SimOptions {
  seed: number
  nodes: number
  /** The first `owners` nodes submit jobs. */
  owners: number
  jobsPerOwner: number
  maxTasks: number
  /** Probability that a task depends on earlier tasks. */
  depRate: number
  lossRate: number
  dupRate: number
  /** Node crashes during the fault phase. */
  crashes: number
  threwRate: number
  crashRate: number
  rejectRate: number
  cancelRate: number
  /** Some nodes have GPUs and some jobs need one. */
  gpus: boolean
  /** Tiny tasks (< 2 ms) to exercise executor depth. */
  tiny: boolean
  faultMs: number
  stepBudget: number
  /** The schedulers' prefetchFactor (their default when absent). */
  prefetchFactor?: number
  /** The schedulers' handOnMinMs (their default when absent). */
  handOnMinMs?: number
  /** The schedulers' pipelineTaskMs (their default when absent). */
  pipelineTaskMs?: number
  /** Keep every command (for determinism checks). */
  log?: boolean
}

type EventBody = SchedulerEvent extends infer E
  ? E extends SchedulerEvent
    ? Omit<E, 'at' | 'cause'> & { cause?: string }
    : never
  : never

/** A request being handled: its answer (a command of the receiver's) goes back to `from`. */
interface Answering {
  readonly request: RequestCommand
  readonly from: SimNode
  readonly fromInc: number
  answered: boolean
}

/** How payloads look once they crossed the mesh: stamped, paths taken on trust. */
const CARRIED: Carried = {
  batch: (batch, from, to) => handOff(batch, from, to, TRUSTED_SIGNER),
  results: trustedResults,
  holdings: trustedHoldings,
}

interface SimNode {
  readonly key: PeerKey
  readonly capacity: Capacity
  readonly owner: boolean
  sched: NodeScheduler | undefined
  incarnation: number
  tickAt: number | undefined
  /** Executor: `job/index/attempt` → run token. */
  readonly runs: Map<string, number>
}

interface StoredJob {
  spec: JobSpec
  tasks: TaskInput[]
  persisted: Map<number, TaskResult>
  status: JobStatus | undefined
  cancelRequested: boolean
}

export interface SimReport {
  violations: string[]
  steps: number
  timeMs: number
  jobs: Map<JobId, StoredJob>
  log: string[]
  finished: number
  stats: Record<string, number>
}

const enc = new TextEncoder()
const dec = new TextDecoder()

export function expectedValue(job: JobId, index: number): Uint8Array {
  return enc.encode(`v:${job}:${index}`)
}

export class SimNet {
  private readonly o: SimOptions
  private readonly rng: Rng
  /** Events are closures (the heap's object slot); the heap's kind and arguments go unused. */
  private readonly heap = new EventHeap()
  private now = 0
  private steps = 0
  private faults = true
  private readonly nodes: SimNode[] = []
  private readonly byKey = new Map<PeerKey, SimNode>()
  private readonly stores = new Map<PeerKey, Map<JobId, StoredJob>>()
  private readonly allJobs = new Map<JobId, StoredJob>()
  private readonly persistCount = new Map<string, number>()
  private readonly finishedCount = new Map<JobId, number>()
  /** Outcomes the executor produced, per task. */
  private readonly produced = new Map<string, { threw: number; crashed: number; rejected: number }>()
  private readonly rtt = new Map<string, number>()
  private readonly violations: string[] = []
  private readonly log: string[] = []
  private runToken = 0
  private causeSeq = 0
  /** The request whose event is being handled (its answer goes back to its sender). */
  private answering: Answering | undefined
  private readonly statTotals: Record<string, number> = {}

  constructor(o: SimOptions) {
    this.o = o
    this.rng = new Rng(o.seed)
    for (let i = 0; i < o.nodes; i++) this.addNode(i)
  }

  private addNode(i: number): void {
    const gpuCount = this.o.gpus && i % 2 === 1 ? 1 + this.rng.int(2) : 0
    const capacity: Capacity = {
      slots: 1 + this.rng.int(4),
      memoryMB: 1024 * (1 + this.rng.int(4)),
      gpus: Array.from({ length: gpuCount }, (_, g) => ({ index: g, name: `sim-gpu-${g}` })),
    }
    const node: SimNode = {
      key: `n${i}`,
      capacity,
      owner: i < this.o.owners,
      sched: undefined,
      incarnation: 0,
      tickAt: undefined,
      runs: new Map(),
    }
    this.nodes.push(node)
    this.byKey.set(node.key, node)
    this.stores.set(node.key, new Map())
    this.start(node)
  }

  private start(node: SimNode): void {
    node.sched = new NodeScheduler({
      self: node.key,
      capacity: node.capacity,
      seed: this.rng.int(2 ** 31),
      leaseIntervalMs: 100,
      leaseTimeoutMs: 600,
      advertIntervalMs: 200,
      advertMinIntervalMs: 20,
      resultResendMs: 300,
      ...(this.o.prefetchFactor === undefined ? {} : { prefetchFactor: this.o.prefetchFactor }),
      ...(this.o.handOnMinMs === undefined ? {} : { handOnMinMs: this.o.handOnMinMs }),
      ...(this.o.pipelineTaskMs === undefined ? {} : { pipelineTaskMs: this.o.pipelineTaskMs }),
    })
    node.tickAt = undefined
    this.after(0, () => this.feed(node, { type: 'tick' }))
  }

  // ---- event heap --------------------------------------------------------

  private after(delayMs: number, run: () => void): void {
    this.heap.push(this.now + delayMs, 0, 0, 0, 0, run)
  }

  // ---- feeding nodes -----------------------------------------------------

  /** Feeds one event; one from a peer keeps the cause of the command it came from, others get a fresh one. */
  private feed(node: SimNode, body: EventBody, answering?: Answering): void {
    const sched = node.sched
    if (sched === undefined) return
    this.steps++
    const event = { ...body, at: this.now, cause: body.cause ?? `c${this.causeSeq++}` } as SchedulerEvent
    if (this.o.log) this.log.push(`${this.now} ${node.key} <- ${JSON.stringify(event, bytes)}`)
    let cmds: Command[]
    try {
      cmds = sched.handle(event)
      sched.checkInvariants()
    } catch (err) {
      this.violations.push(`${node.key} on ${event.type} at ${this.now}: ${(err as Error).stack}`)
      throw err
    }
    this.answering = answering
    for (const c of cmds) {
      if (c.cause !== event.cause) this.violations.push(`${c.type} lost its cause`)
      if (this.o.log) this.log.push(`${this.now} ${node.key} ${JSON.stringify(c, bytes)}`)
      this.obey(node, c, event)
    }
    this.answering = undefined
    this.armTick(node)
  }

  private armTick(node: SimNode): void {
    const d = node.sched?.nextDeadline()
    if (d === undefined) return
    if (d <= this.now) {
      this.violations.push(`${node.key}: nextDeadline ${d} is not in the future (now ${this.now})`)
      return
    }
    if (node.tickAt !== undefined && node.tickAt > this.now && node.tickAt <= d) return
    node.tickAt = d
    const inc = node.incarnation
    this.after(d - this.now, () => {
      if (node.incarnation !== inc) return
      if (node.tickAt === d) node.tickAt = undefined
      this.feed(node, { type: 'tick' })
    })
  }

  /**
   * Sends a message; a loss (or a broken connection) gives the sender `failed` if there is one,
   * and a lost answer gives the requester at the other end `requesterFailed`. A request carries
   * `answering` so its receiver's answer finds its way back.
   */
  private send(
    from: SimNode,
    to: PeerKey,
    body: EventBody | undefined,
    failed?: EventBody,
    requesterFailed?: EventBody,
    answering?: Answering,
  ): void {
    const target = this.byKey.get(to)
    const fromInc = from.incarnation
    const fail = () => {
      if (failed !== undefined && from.incarnation === fromInc)
        this.after(1 + this.rng.int(3), () => this.feedIf(from, fromInc, failed))
    }
    if (
      target === undefined ||
      target.sched === undefined ||
      (this.faults && this.rng.next() < this.o.lossRate)
    ) {
      fail()
      if (requesterFailed !== undefined && target?.sched !== undefined) {
        const inc = target.incarnation
        this.after(1 + this.rng.int(3), () => this.feedIf(target, inc, requesterFailed))
      }
      return
    }
    const toInc = target.incarnation
    const copies = this.faults && this.rng.next() < this.o.dupRate ? 2 : 1
    for (let i = 0; i < copies; i++) {
      this.after(this.delay(from.key, to), () => {
        if (target.incarnation !== toInc) {
          if (i === 0) fail()
          return
        }
        if (body === undefined) return
        if (answering === undefined) return this.feed(target, body)
        const a: Answering = { ...answering, answered: false }
        this.feed(target, body, a)
        // An accepted push is answered by the response alone: when that is lost the pusher hears push-failed.
        if (!a.answered && failed?.type === 'push-failed' && this.lossy()) fail()
      })
    }
  }

  /** Whether a message (a response with nothing else in it) is lost; no draw without losses. */
  private lossy(): boolean {
    return this.faults && this.o.lossRate > 0 && this.rng.next() < this.o.lossRate
  }

  private feedIf(node: SimNode, inc: number, body: EventBody): void {
    if (node.incarnation === inc) this.feed(node, body)
  }

  private delay(a: PeerKey, b: PeerKey): number {
    return this.rttOf(a, b) / 2 + this.rng.next() * 3
  }

  private rttOf(a: PeerKey, b: PeerKey): number {
    const k = a < b ? `${a}|${b}` : `${b}|${a}`
    let r = this.rtt.get(k)
    if (r === undefined) {
      r = 0.2 + this.rng.next() * 4
      this.rtt.set(k, r)
    }
    return r
  }

  // ---- commands ----------------------------------------------------------

  private obey(node: SimNode, c: Command, cause: SchedulerEvent): void {
    const from = node.key
    switch (c.type) {
      case 'run-task':
        this.execute(node, c)
        return
      case 'cancel-task':
        node.runs.delete(`${c.task.job}/${c.task.index}/${c.task.attempt}`)
        return
      case 'persist-results':
        this.persist(node, c.results)
        return
      case 'ack-results':
        this.checkAck(node, cause, c.tasks)
        this.answer(node, c)
        return
      case 'reply-steal':
      case 'answer-lease':
      case 'refuse-push':
        this.answer(node, c)
        return
      case 'publish-advert':
        for (const other of this.nodes) {
          if (other === node || other.sched === undefined) continue
          const rttMs = this.rttOf(from, other.key)
          this.send(node, other.key, { type: 'advert-received', peer: from, advert: c.advert, rttMs })
        }
        return
      case 'job-finished': {
        const job = this.stores.get(from)?.get(c.job)
        if (job !== undefined) job.status = c.status
        this.finishedCount.set(c.job, (this.finishedCount.get(c.job) ?? 0) + 1)
        return
      }
      case 'job-progress':
      case 'job-blocked':
        return
      default:
        this.relay(node, c)
        return
    }
  }

  /** Requests to one peer (src/scheduler/hearing.ts says what each end hears). */
  private relay(node: SimNode, c: Command): void {
    if (
      c.type !== 'send-steal' &&
      c.type !== 'push-batch' &&
      c.type !== 'send-results' &&
      c.type !== 'send-lease' &&
      c.type !== 'send-cancel'
    )
      throw new Error(`not a message: ${c.type}`)
    // The draw that once chose whether a lost result was noticed: kept so recorded seeds keep their histories.
    if (c.type === 'send-results') this.rng.next()
    const requestId = c.type === 'send-steal' ? c.requestId : 0
    const answering: Answering = { request: c, from: node, fromInc: node.incarnation, answered: false }
    this.send(
      node,
      c.to,
      requestHeard(c, node.key, requestId, CARRIED, 0),
      requestLost(c, 'lost', 0),
      undefined,
      answering,
    )
  }

  /** An answer to the request being handled travels back to its sender (the daemon writes it as the response). */
  private answer(node: SimNode, c: AnswerCommand): void {
    const q = this.answering
    if (q === undefined || q.from.key !== c.to) {
      this.violations.push(`${node.key}: ${c.type} to ${c.to} answers no request`)
      return
    }
    q.answered = true
    if (q.from.incarnation !== q.fromInc) {
      // The requester restarted: its stream is gone with it, and so is the answer.
      const lost = answerLost(c, 0)
      if (lost !== undefined) this.after(1 + this.rng.int(3), () => this.feedIf(node, node.incarnation, lost))
      return
    }
    const carried: AnswerCommand =
      c.type === 'reply-steal' ? { ...c, batch: handOff(c.batch, node.key, c.to, TRUSTED_SIGNER) } : c
    this.send(
      node,
      c.to,
      answerHeard(q.request, carried, 0),
      answerLost(c, 0),
      requestLost(q.request, 'lost', 0),
    )
  }

  private execute(node: SimNode, c: Extract<Command, { type: 'run-task' }>): void {
    const t = c.task
    const spec = this.allJobs.get(t.job)
    if (spec !== undefined) {
      const deps = spec.tasks.find((x) => x.index === t.index)?.deps ?? []
      const want = deps.map((d) => dec.decode(expectedValue(t.job, d)))
      const got = t.depValues.map((v) => dec.decode(v))
      if (JSON.stringify(want) !== JSON.stringify(got)) {
        this.violations.push(`task ${t.job}/${t.index} got depValues ${got} instead of ${want}`)
      }
    }
    if (c.gpus.length !== Math.ceil(c.job.resources.gpu))
      this.violations.push(`run-task with wrong GPU count`)
    const key = `${t.job}/${t.index}/${t.attempt}`
    const token = ++this.runToken
    node.runs.set(key, token)
    const inc = node.incarnation
    const durationMs = this.o.tiny && this.rng.next() < 0.7 ? this.rng.next() : 1 + this.rng.int(20)
    const outcome = this.outcome(t.job, t.index, durationMs)
    this.after(durationMs, () => {
      if (node.incarnation !== inc || node.runs.get(key) !== token) return
      node.runs.delete(key)
      this.feed(node, {
        type: 'task-finished',
        task: { job: t.job, index: t.index, attempt: t.attempt },
        outcome,
      })
    })
  }

  private outcome(job: JobId, index: number, durationMs: number): TaskOutcome {
    const x = this.rng.next()
    const key = `${job}/${index}`
    const p = this.produced.get(key) ?? { threw: 0, crashed: 0, rejected: 0 }
    this.produced.set(key, p)
    const o = this.o
    if (x < o.rejectRate) {
      p.rejected++
      return { status: 'rejected', error: 'no such export', durationMs }
    }
    if (x < o.rejectRate + o.threwRate) {
      p.threw++
      return { status: 'threw', error: 'boom', stack: 'at task', durationMs }
    }
    if (x < o.rejectRate + o.threwRate + o.crashRate) {
      p.crashed++
      return { status: 'crashed', error: 'worker exited', durationMs }
    }
    return { status: 'ok', value: expectedValue(job, index), durationMs }
  }

  private persist(node: SimNode, results: TaskResult[]): void {
    const store = this.stores.get(node.key)
    for (const r of results) {
      const job = store?.get(r.job)
      if (job === undefined) {
        this.violations.push(`${node.key} persisted a result of unknown job ${r.job}`)
        continue
      }
      const k = `${r.job}/${r.index}`
      this.persistCount.set(k, (this.persistCount.get(k) ?? 0) + 1)
      if (job.persisted.has(r.index)) this.violations.push(`task ${k} persisted twice`)
      job.persisted.set(r.index, r)
    }
  }

  /**
   * Results accepted as final must be persisted before their ack. Only the acked ones: a result
   * the owner refused (an attempt it no longer counts from that sender) is neither persisted nor acked.
   */
  private checkAck(node: SimNode, cause: SchedulerEvent, acked: readonly TaskKey[]): void {
    if (cause.type !== 'results-received') {
      this.violations.push(`ack-results caused by ${cause.type}`)
      return
    }
    const store = this.stores.get(node.key)
    const keys = new Set(acked.map((k) => `${k.job}/${k.index}/${k.attempt}`))
    for (const r of cause.results) {
      if (!keys.has(`${r.job}/${r.index}/${r.attempt}`)) continue
      const job = store?.get(r.job)
      if (job === undefined || job.cancelRequested) continue
      const final = r.outcome.status === 'ok' || r.outcome.status === 'rejected'
      if (final && !job.persisted.has(r.index))
        this.violations.push(`task ${r.job}/${r.index} acked before persisted`)
    }
  }

  // ---- scenario -------------------------------------------------------------

  private planJobs(): void {
    for (const node of this.nodes) {
      if (!node.owner) continue
      for (let j = 0; j < this.o.jobsPerOwner; j++) {
        const id = `${node.key}-j${j}`
        const n = 1 + this.rng.int(this.o.maxTasks)
        const tasks: TaskInput[] = []
        for (let i = 0; i < n; i++) {
          const deps: number[] = []
          if (i > 0 && this.rng.next() < this.o.depRate) {
            const k = 1 + this.rng.int(2)
            for (let d = 0; d < k; d++) deps.push(this.rng.int(i))
          }
          tasks.push({ index: i, input: enc.encode(`in${i}`), deps })
        }
        const gpu = this.o.gpus && this.rng.next() < 0.3 ? 1 : 0
        const spec: JobSpec = {
          id,
          owner: node.key,
          work: { kind: 'noop' },
          resources: { cpu: 1, gpu, memoryMB: 64 * this.rng.int(8) },
          timeoutMs: 0,
          maxAttempts: 1 + this.rng.int(4),
          retries: this.rng.int(3),
        }
        const at = this.rng.next() * this.o.faultMs * 0.5
        const job: StoredJob = {
          spec,
          tasks,
          persisted: new Map(),
          status: undefined,
          cancelRequested: false,
        }
        this.now = 0
        this.after(at, () => this.submit(node, job))
        if (this.rng.next() < this.o.cancelRate)
          this.after(at + this.rng.next() * 200, () => this.cancel(node, job))
      }
    }
  }

  private submit(node: SimNode, job: StoredJob): void {
    if (node.sched === undefined) {
      this.after(50, () => this.submit(node, job))
      return
    }
    this.stores.get(node.key)?.set(job.spec.id, job)
    this.allJobs.set(job.spec.id, job)
    this.feed(node, { type: 'job-submitted', job: job.spec, tasks: job.tasks })
  }

  private cancel(node: SimNode, job: StoredJob): void {
    if (!this.allJobs.has(job.spec.id) || job.status !== undefined) return
    if (node.sched === undefined) {
      this.after(50, () => this.cancel(node, job))
      return
    }
    job.cancelRequested = true
    this.feed(node, { type: 'job-cancelled', job: job.spec.id })
  }

  private crash(node: SimNode): void {
    if (node.sched === undefined) return
    node.sched = undefined
    node.incarnation++
    node.runs.clear()
    node.tickAt = undefined
    for (const other of this.nodes) {
      if (other !== node)
        this.after(1 + this.rng.int(5), () => this.feed(other, { type: 'peer-gone', peer: node.key }))
    }
    this.after(50 + this.rng.int(400), () => this.restart(node))
  }

  private restart(node: SimNode): void {
    if (node.sched !== undefined) return
    this.start(node)
    for (const job of this.stores.get(node.key)?.values() ?? []) {
      if (job.status !== undefined) continue
      const finished = [...job.persisted.values()].map((r) => ({
        index: r.index,
        ok: r.outcome.status === 'ok',
        value: r.outcome.status === 'ok' ? r.outcome.value : undefined,
      }))
      this.feed(node, { type: 'job-restored', job: job.spec, tasks: job.tasks, finished })
    }
    for (const other of this.nodes) {
      if (other !== node)
        this.after(1 + this.rng.int(5), () => this.feed(other, { type: 'peer-connected', peer: node.key }))
    }
  }

  private planCrashes(): void {
    for (let i = 0; i < this.o.crashes; i++) {
      const node = this.nodes[this.rng.int(this.nodes.length)]
      this.now = 0
      this.after(this.rng.next() * this.o.faultMs, () => {
        if (this.faults) this.crash(node)
      })
    }
  }

  private allFinished(): boolean {
    if (this.allJobs.size < this.o.owners * this.o.jobsPerOwner) return false
    for (const j of this.allJobs.values()) if (j.status === undefined) return false
    return true
  }

  run(): SimReport {
    this.planJobs()
    this.planCrashes()
    this.now = 0
    this.after(this.o.faultMs, () => {
      this.faults = false
      for (const node of this.nodes) if (node.sched === undefined) this.restart(node)
    })
    try {
      this.loop(() => !this.faults && this.allFinished())
      // Quiescence: once every job is finished, leases must clear every holder of leftovers.
      const settleUntil = this.now + 3000
      if (this.allFinished()) this.loop(() => this.now >= settleUntil)
    } catch {
      // recorded in violations
    }
    this.check()
    this.checkQuiet()
    for (const node of this.nodes) {
      for (const [k, v] of Object.entries(node.sched?.stats() ?? {}))
        this.statTotals[k] = (this.statTotals[k] ?? 0) + v
    }
    return {
      violations: this.violations,
      steps: this.steps,
      timeMs: this.now,
      jobs: this.allJobs,
      log: this.log,
      finished: [...this.allJobs.values()].filter((j) => j.status !== undefined).length,
      stats: this.statTotals,
    }
  }

  private loop(done: () => boolean): void {
    const heap = this.heap
    while (this.steps < this.o.stepBudget) {
      if (!heap.pop()) return
      this.now = heap.top.at
      ;(heap.top.obj as () => void)()
      if (done()) return
    }
  }

  private checkQuiet(): void {
    if (!this.allFinished()) return
    for (const node of this.nodes) {
      const a = node.sched?.advert()
      if (a !== undefined && (a.running > 0 || a.ready.length > 0)) {
        this.violations.push(`quiescence: ${node.key} still holds tasks: ${JSON.stringify(a)}`)
      }
    }
  }

  // ---- end-of-run checks --------------------------------------------------------

  private check(): void {
    const v = this.violations
    if (!this.allFinished()) {
      const open = [...this.allJobs.values()].filter((j) => j.status === undefined).map((j) => j.spec.id)
      v.push(`liveness: jobs not finished after ${this.steps} steps / ${this.now} ms: ${open.join(', ')}`)
    }
    for (const [id, n] of this.finishedCount) if (n !== 1) v.push(`job ${id} finished ${n} times`)
    for (const job of this.allJobs.values()) this.checkJob(job)
  }

  private checkJob(job: StoredJob): void {
    const v = this.violations
    const id = job.spec.id
    if (job.status === undefined) return
    if (job.status === 'cancelled') {
      if (!job.cancelRequested) v.push(`job ${id} cancelled without a request`)
      return
    }
    let failed = 0
    for (const t of job.tasks) {
      const k = `${id}/${t.index}`
      const count = this.persistCount.get(k) ?? 0
      if (count !== 1) {
        v.push(`task ${k} persisted ${count} times`)
        continue
      }
      const r = job.persisted.get(t.index)
      if (r === undefined) continue
      if (r.outcome.status === 'ok') {
        if (dec.decode(r.outcome.value) !== dec.decode(expectedValue(id, t.index)))
          v.push(`task ${k}: wrong value`)
        continue
      }
      failed++
      this.checkFailure(job, t, r)
    }
    const want = failed > 0 ? 'failed' : 'done'
    if (job.status !== want) v.push(`job ${id} finished ${job.status}, expected ${want}`)
  }

  private checkFailure(job: StoredJob, t: TaskInput, r: TaskResult): void {
    const k = `${job.spec.id}/${t.index}`
    const p = this.produced.get(k) ?? { threw: 0, crashed: 0, rejected: 0 }
    const o = r.outcome
    const bad = (why: string) =>
      this.violations.push(`task ${k} failed wrongly (${why}): ${JSON.stringify(o)}`)
    switch (o.status) {
      case 'rejected':
        if (o.error.startsWith('dependency ')) {
          const dep = Number(o.error.split(' ')[1])
          const dr = job.persisted.get(dep)
          if (!t.deps.includes(dep) || dr === undefined || dr.outcome.status === 'ok')
            bad('dependency did not fail')
        } else if (p.rejected === 0) bad('never rejected')
        return
      case 'threw':
      case 'timeout':
        if (p.threw < job.spec.retries + 1) bad(`threw ${p.threw} times, retries ${job.spec.retries}`)
        return
      case 'crashed':
        if (!o.error.startsWith('poison: ')) bad('crash not marked poison')
        if (this.o.crashes === 0 && this.o.lossRate === 0 && p.crashed < job.spec.maxAttempts) {
          bad(`crashed ${p.crashed} times, maxAttempts ${job.spec.maxAttempts}`)
        }
        return
      case 'ok':
        return
    }
  }
}

/**
 * The reclaim lease gap's scenario, read from a run's log (`log: true`): leases
 * `owner` received from a holder naming tasks it had pushed to that holder and
 * since stolen back from it. A regression seed must still produce one, or it
 * no longer tests the gap (the scheduler's choices moved under it).
 */
export function leasesAfterHandBack(log: readonly string[], owner: PeerKey): string[] {
  const pushedTo = new Map<string, PeerKey>()
  const back = new Map<string, number>()
  const out: string[] = []
  for (const line of log) {
    const sp = line.indexOf(' ')
    const sp2 = line.indexOf(' ', sp + 1)
    if (line.slice(sp + 1, sp2) !== owner) continue
    const at = Number(line.slice(0, sp))
    const rest = line.slice(sp2 + 1)
    const inbound = rest.startsWith('<- ')
    const e = JSON.parse(inbound ? rest.slice(3) : rest) as {
      type: string
      to?: PeerKey
      from?: PeerKey
      batch?: { tasks: Array<{ job: JobId; index: number }> }
      holdings?: Array<{ job: JobId; index: number }>
    }
    if (!inbound && e.type === 'push-batch')
      for (const d of e.batch?.tasks ?? []) pushedTo.set(`${d.job}/${d.index}`, e.to as PeerKey)
    if (inbound && e.type === 'steal-granted')
      for (const d of e.batch?.tasks ?? [])
        if (pushedTo.get(`${d.job}/${d.index}`) === e.from) back.set(`${d.job}/${d.index}@${e.from}`, at)
    if (inbound && e.type === 'lease-received')
      for (const k of e.holdings ?? []) {
        const b = back.get(`${k.job}/${k.index}@${e.from}`)
        if (b !== undefined && b < at) out.push(`${k.job}/${k.index} from ${e.from} at ${at} (back at ${b})`)
      }
  }
  return out
}

function bytes(_k: string, v: unknown): unknown {
  return v instanceof Uint8Array ? dec.decode(v) : v
}
