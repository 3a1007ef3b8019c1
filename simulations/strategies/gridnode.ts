/**
 * Ours: one real NodeScheduler (src/scheduler, unchanged) per simulated
 * node. The strategy feeds each scheduler its events on virtual time and
 * carries out the commands it returns, the way src/node/driver.ts does:
 * requests cross the network model to the peer's matching event and its
 * answer comes back, and a request or answer whose stream breaks (loss, a
 * dead or cut-off peer) gives each end what the driver would give it; both
 * come from src/scheduler/hearing.ts, as in the daemon. Runs go to the simulated
 * executor, persist-results to the owner's store, and one tick per node is
 * armed at nextDeadline().
 */
import {
  type AnswerCommand,
  answerHeard,
  answerLost,
  type Carried,
  type RequestCommand,
  requestHeard,
  requestLost,
} from '../../src/scheduler/hearing.ts'
import {
  type Command,
  handOff,
  NodeScheduler,
  type SchedulerEvent,
  type SchedulerStats,
  type TaskOutcome,
  type TaskResult,
  TRUSTED_SIGNER,
  trustedHoldings,
  trustedResults,
} from '../../src/scheduler/index.ts'
import { MSG } from '../core/metrics.ts'
import { FIRST_STRATEGY_KIND, type Run, type Sim, type Strategy } from '../core/sim.ts'
import type { SimJob } from '../model/workload.ts'
import { advertBytes, batchBytes, keysBytes, resultsBytes, SMALL_BYTES, STEAL_REQUEST_BYTES } from './wire.ts'

const K_MSG = FIRST_STRATEGY_KIND
const K_FEED = FIRST_STRATEGY_KIND + 1
const K_SHARED = FIRST_STRATEGY_KIND + 2
const K_TICK = FIRST_STRATEGY_KIND + 3
const K_SUBMIT_RETRY = FIRST_STRATEGY_KIND + 4

/** A message in flight, with what its ends hear if it does not arrive. */
interface Msg {
  readonly ev: SchedulerEvent
  readonly from: number
  readonly fromInc: number
  /** To the sender when the message cannot be delivered. */
  readonly fail: SchedulerEvent | undefined
  /** To the receiver when the message is lost (the requester of a response). */
  readonly recvFail: SchedulerEvent | undefined
  /** A request/response whose response can be lost after delivery (push). */
  readonly answered: boolean
  /** The request this message carries (its answer goes back to `from`). */
  readonly request: RequestCommand | undefined
}

/** How payloads look once they crossed the network: stamped, paths taken on trust. */
const CARRIED: Carried = {
  batch: (batch, from, to) => handOff(batch, from, to, TRUSTED_SIGNER),
  results: trustedResults,
  holdings: trustedHoldings,
}

type Cmd<T extends Command['type']> = Extract<Command, { type: T }>

export class GridnodeStrategy implements Strategy {
  readonly name = 'gridnode' as const
  readonly settleMs: number
  private readonly sim: Sim
  private readonly sched: (NodeScheduler | undefined)[]
  private readonly tickAt: Float64Array
  private readonly lastCheck: Float64Array
  private readonly index = new Map<string, number>()
  private readonly owners = new Set<number>()
  /** Peers each node has exchanged messages with (neighbourhood gossip only). */
  private readonly contacts: Set<number>[] | undefined
  private readonly persisted: (TaskResult | undefined)[]
  private readonly tick: SchedulerEvent = { type: 'tick', at: 0, cause: 'tick' }
  private readonly fullCheck: boolean
  private readonly checkIntervalMs: number
  private readonly deadStats: Record<string, number> = {}
  private readonly lossDetectMs: number
  private readonly ownersToAll: boolean
  /** The request being handled: its answer goes back to the sender. */
  private answering: Msg | undefined
  private answeredBy: AnswerCommand | undefined
  blockedNotices = 0

  constructor(sim: Sim) {
    this.sim = sim
    const n = sim.mesh.size
    this.sched = new Array(n).fill(undefined)
    this.tickAt = new Float64Array(n).fill(-1)
    this.lastCheck = new Float64Array(n).fill(Number.NEGATIVE_INFINITY)
    for (const m of sim.mesh.nodes) this.index.set(m.key, m.index)
    for (const j of sim.work.jobs) this.owners.add(j.owner)
    this.contacts =
      sim.mesh.neighbours !== undefined ? sim.mesh.nodes.map(() => new Set<number>()) : undefined
    this.persisted = new Array(sim.work.total).fill(undefined)
    this.fullCheck = (sim.spec.check ?? 'sampled') === 'full'
    this.checkIntervalMs = sim.spec.checkIntervalMs ?? 1000
    const t = sim.spec.scheduler ?? {}
    this.settleMs = 3 * (t.leaseTimeoutMs ?? 5000) + (t.resultResendMs ?? 2000)
    this.lossDetectMs = sim.spec.faults.lossDetectMs
    const g = sim.spec.network.gossip
    this.ownersToAll = g.mode === 'neighbourhood' && g.ownersToAll === true
  }

  // ---- life cycle ------------------------------------------------------------------

  start(): void {
    for (let i = 0; i < this.sim.mesh.initial; i++) this.boot(i)
  }

  /** A fresh scheduler on `node` (start, restart or join), ticked at once. */
  private boot(node: number): void {
    const m = this.sim.mesh.nodes[node]
    this.sched[node] = new NodeScheduler({
      self: m.key,
      capacity: {
        slots: m.slots,
        memoryMB: m.memoryMB,
        gpus: Array.from({ length: m.gpus }, (_, g) => ({ index: g, name: `sim-gpu-${g}` })),
      },
      seed: this.sim.rng.seed(),
      ...this.sim.spec.scheduler,
    })
    this.tickAt[node] = -1
    this.feed(node, this.tick)
  }

  submit(job: SimJob): void {
    if (this.sched[job.owner] === undefined) {
      this.sim.schedule(this.sim.now + 50, K_SUBMIT_RETRY, job.number, 0, 0, job)
      return
    }
    this.feed(job.owner, {
      type: 'job-submitted',
      at: 0,
      cause: `submit:${job.id}`,
      job: job.spec,
      tasks: job.inputs,
    })
  }

  crashed(node: number, detectMs: number): void {
    this.retire(node)
    this.notifyPeers(node, detectMs, 'peer-gone')
  }

  recovered(node: number): void {
    this.boot(node)
    for (const job of this.sim.work.jobs) {
      if (job.owner !== node || !Number.isNaN(this.sim.jobFinishedAt[job.number])) continue
      const finished: Array<{ index: number; ok: boolean; value?: Uint8Array }> = []
      for (let i = 0; i < job.size; i++) {
        const r = this.persisted[job.base + i]
        if (r === undefined) continue
        finished.push({
          index: i,
          ok: r.outcome.status === 'ok',
          value: r.outcome.status === 'ok' ? r.outcome.value : undefined,
        })
      }
      this.feed(node, {
        type: 'job-restored',
        at: 0,
        cause: `restore:${job.id}`,
        job: job.spec,
        tasks: job.inputs,
        finished,
      })
    }
    this.notifyPeers(node, 20, 'peer-connected')
  }

  joined(node: number): void {
    this.boot(node)
  }

  cut(nodes: number[], detectMs: number): void {
    const cutSet = new Set(nodes)
    for (const c of nodes) {
      for (const o of this.observers(c)) {
        if (cutSet.has(o)) continue
        this.sharedTo(o, c, detectMs, { type: 'peer-gone', at: 0, cause: 'partition', peer: this.sim.key(c) })
        this.sharedTo(c, o, detectMs, { type: 'peer-gone', at: 0, cause: 'partition', peer: this.sim.key(o) })
      }
    }
  }

  healed(nodes: number[]): void {
    const cutSet = new Set(nodes)
    for (const c of nodes) {
      for (const o of this.observers(c)) {
        if (cutSet.has(o)) continue
        this.sharedTo(o, c, 20, { type: 'peer-connected', at: 0, cause: 'heal', peer: this.sim.key(c) })
        this.sharedTo(c, o, 20, { type: 'peer-connected', at: 0, cause: 'heal', peer: this.sim.key(o) })
      }
    }
  }

  private retire(node: number): void {
    const s = this.sched[node]
    if (s === undefined) return
    addStats(this.deadStats, s.stats())
    this.sched[node] = undefined
    this.tickAt[node] = -1
  }

  /** Who would see `node`'s connection drop: everyone, or its neighbours, contacts and the owners. */
  private observers(node: number): Iterable<number> {
    const nb = this.sim.mesh.neighbours
    if (nb === undefined) {
      const all: number[] = []
      for (let i = 0; i < this.sim.mesh.size; i++) if (i !== node && this.sim.alive[i] === 1) all.push(i)
      return all
    }
    const out = new Set<number>(nb[node])
    for (const c of this.contacts?.[node] ?? []) out.add(c)
    for (const o of this.owners) out.add(o)
    out.delete(node)
    return out
  }

  private notifyPeers(node: number, delayMs: number, type: 'peer-gone' | 'peer-connected'): void {
    const ev: SchedulerEvent = {
      type,
      at: 0,
      cause: `${type}:${this.sim.key(node)}`,
      peer: this.sim.key(node),
    }
    for (const o of this.observers(node)) this.sharedTo(o, node, delayMs, ev)
  }

  // ---- the one door into each scheduler ------------------------------------------------

  private feed(node: number, ev: SchedulerEvent): void {
    const s = this.sched[node]
    if (s === undefined) return
    ev.at = this.sim.now
    const cmds = s.handle(ev)
    if (this.fullCheck || this.sim.now - this.lastCheck[node] >= this.checkIntervalMs) this.check(node, s)
    for (let i = 0; i < cmds.length; i++) this.obey(node, cmds[i])
    this.arm(node, s)
  }

  private check(node: number, s: NodeScheduler): void {
    this.lastCheck[node] = this.sim.now
    try {
      s.checkInvariants()
    } catch (err) {
      this.sim.violation(`${this.sim.key(node)}: ${(err as Error).message}`)
    }
  }

  private arm(node: number, s: NodeScheduler): void {
    const d = s.nextDeadline()
    if (d === undefined) return
    const now = this.sim.now
    if (d <= now) {
      this.sim.violation(`${this.sim.key(node)}: nextDeadline ${d} is not after now`)
      return
    }
    const cur = this.tickAt[node]
    if (cur > now && cur <= d) return
    this.tickAt[node] = d
    this.sim.schedule(d, K_TICK, node, this.sim.inc[node], d, undefined)
  }

  fire(kind: number, a: number, b: number, x: number, obj: unknown): void {
    const sim = this.sim
    if (kind === K_SUBMIT_RETRY) return this.submit(obj as SimJob)
    if (sim.inc[a] !== b || sim.alive[a] === 0) {
      if (kind === K_MSG) this.undelivered(a, obj as Msg, false)
      else sim.staleSteps++
      return
    }
    switch (kind) {
      case K_TICK:
        if (this.tickAt[a] !== x) {
          sim.staleSteps++
          return
        }
        this.tickAt[a] = -1
        this.feed(a, this.tick)
        return
      case K_MSG: {
        const m = obj as Msg
        if (!sim.net.reachable(m.from, a)) return this.undelivered(a, m, true)
        this.answering = m.request === undefined ? undefined : m
        this.answeredBy = undefined
        this.feed(a, m.ev)
        const answered = this.answeredBy !== undefined
        this.answering = undefined
        this.answeredBy = undefined
        // An accepted push is answered by the response alone; it too can be lost.
        if (m.answered && !answered && m.fail !== undefined && sim.net.lost(sim.rng))
          this.later(m.from, m.fromInc, this.lossDetectMs, m.fail)
        return
      }
      case K_FEED:
        this.feed(a, obj as SchedulerEvent)
        return
      case K_SHARED: {
        const ev = obj as SchedulerEvent
        if (ev.type === 'advert-received') {
          if (!sim.net.reachable(x, a)) return
          ev.rttMs = sim.net.rttMs(x, a)
        }
        this.feed(a, ev)
        return
      }
      default:
        throw new Error(`gridnode: unknown event kind ${kind}`)
    }
  }

  /** The receiver died or was cut off before the message arrived: the sender's stream breaks. */
  private undelivered(to: number, m: Msg, cut: boolean): void {
    if (m.fail === undefined) return
    const delay = cut ? this.lossDetectMs : this.sim.net.rttMs(m.from, to) + 1
    this.later(m.from, m.fromInc, delay, m.fail)
  }

  private later(node: number, inc: number, delayMs: number, ev: SchedulerEvent): void {
    if (this.sim.inc[node] !== inc) return
    this.sim.schedule(this.sim.now + delayMs, K_FEED, node, inc, 0, ev)
  }

  private sharedTo(node: number, about: number, delayMs: number, ev: SchedulerEvent): void {
    if (this.sim.alive[node] === 0) return
    this.sim.schedule(this.sim.now + delayMs, K_SHARED, node, this.sim.inc[node], about, ev)
  }

  // ---- carrying out commands ---------------------------------------------------------------

  private send(
    from: number,
    toKey: string,
    type: number,
    bytes: number,
    ev: SchedulerEvent,
    fail?: SchedulerEvent,
    recvFail?: SchedulerEvent,
    answered = false,
    request?: RequestCommand,
  ): void {
    const sim = this.sim
    const to = this.index.get(toKey)
    if (to === undefined) throw new Error(`message to unknown peer ${toKey}`)
    const fromInc = sim.inc[from]
    const m: Msg = { ev, from, fromInc, fail, recvFail, answered, request }
    if (this.contacts !== undefined) {
      this.contacts[from].add(to)
      this.contacts[to].add(from)
    }
    if (sim.alive[to] === 0 || !sim.net.reachable(from, to)) {
      this.undelivered(to, m, sim.alive[to] === 1)
      return
    }
    sim.metrics.message(type, bytes)
    if (sim.net.lost(sim.rng)) {
      // The stream broke: the requester hears at once; a response's writer only if its write failed.
      if (fail !== undefined && (recvFail === undefined || sim.rng.next() < 0.5))
        this.later(from, fromInc, this.lossDetectMs, fail)
      if (recvFail !== undefined) this.later(to, sim.inc[to], this.lossDetectMs, recvFail)
      return
    }
    sim.schedule(sim.net.arrival(sim.now, from, to, bytes, sim.rng), K_MSG, to, sim.inc[to], from, m)
  }

  /** A request to one peer: what each end hears comes from src/scheduler/hearing.ts. */
  private request(node: number, c: RequestCommand, type: number, bytes: number, answered = false): void {
    const self = this.sim.key(node)
    const requestId = c.type === 'send-steal' ? c.requestId : 0
    const ev = requestHeard(c, self, requestId, CARRIED, 0)
    return this.send(node, c.to, type, bytes, ev, requestLost(c, 'stream broke', 0), undefined, answered, c)
  }

  /** The answer to the request being handled goes back to its sender (the daemon writes it as the response). */
  private answer(node: number, c: AnswerCommand, type: number, bytes: number): void {
    const m = this.answering
    if (m === undefined || this.sim.key(m.from) !== c.to || m.request === undefined) {
      this.sim.violation(`${this.sim.key(node)}: ${c.type} to ${c.to} answers no request`)
      return
    }
    this.answeredBy = c
    const self = this.sim.key(node)
    const carried: AnswerCommand =
      c.type === 'reply-steal' ? { ...c, batch: handOff(c.batch, self, c.to, TRUSTED_SIGNER) } : c
    const heard = answerHeard(m.request, carried, 0)
    if (heard === undefined) return
    return this.send(
      node,
      c.to,
      type,
      bytes,
      heard,
      answerLost(c, 0),
      requestLost(m.request, 'stream broke', 0),
    )
  }

  private obey(node: number, c: Command): void {
    switch (c.type) {
      case 'send-steal':
        return this.request(node, c, MSG.stealRequest, STEAL_REQUEST_BYTES)
      case 'reply-steal':
        return this.answer(node, c, MSG.stealReply, batchBytes(c.batch))
      case 'push-batch':
        this.sim.metrics.message(MSG.push, SMALL_BYTES)
        return this.request(node, c, MSG.push, batchBytes(c.batch), true)
      case 'refuse-push':
        return this.answer(node, c, MSG.push, SMALL_BYTES)
      case 'send-results':
        return this.request(node, c, MSG.results, resultsBytes(c.results))
      case 'ack-results':
        return this.answer(node, c, MSG.ack, keysBytes(c.tasks))
      case 'send-lease':
        return this.request(node, c, MSG.lease, keysBytes(c.holdings))
      case 'answer-lease':
        return this.answer(node, c, MSG.leaseAnswer, keysBytes(c.drop))
      case 'send-cancel':
        return this.request(node, c, MSG.cancel, SMALL_BYTES)
      case 'publish-advert':
        return this.publish(node, c)
      case 'run-task':
        return this.runTask(node, c)
      case 'cancel-task': {
        const job = this.sim.work.job(c.task.job)
        const run = job === undefined ? undefined : this.sim.runs[node].get(job.base + c.task.index)
        if (run !== undefined && run.attempt === c.task.attempt) this.sim.cancelRun(run)
        return
      }
      case 'persist-results':
        return this.persist(c)
      case 'job-finished': {
        const job = this.sim.work.job(c.job)
        if (job !== undefined) this.sim.jobFinished(job.number, c.status)
        return
      }
      case 'job-blocked':
        if (c.reason !== '') this.blockedNotices++
        return
      case 'job-progress':
        return
      default:
        throw new Error(`gridnode: unhandled command ${(c as Command).type}`)
    }
  }

  private publish(node: number, c: Cmd<'publish-advert'>): void {
    const sim = this.sim
    const ev: SchedulerEvent = {
      type: 'advert-received',
      at: 0,
      cause: c.cause,
      peer: sim.key(node),
      advert: c.advert,
      rttMs: 0,
    }
    const bytes = advertBytes(c.advert)
    const nb = sim.mesh.neighbours
    if (nb === undefined || (this.ownersToAll && this.owners.has(node))) {
      for (let i = 0; i < sim.mesh.size; i++) if (i !== node) this.advertTo(node, i, bytes, ev)
    } else {
      for (const i of nb[node]) this.advertTo(node, i, bytes, ev)
    }
  }

  private advertTo(from: number, to: number, bytes: number, ev: SchedulerEvent): void {
    const sim = this.sim
    if (sim.alive[to] === 0 || !sim.net.reachable(from, to) || sim.net.lost(sim.rng)) return
    sim.metrics.message(MSG.advert, bytes)
    sim.schedule(sim.now + sim.net.delayMs(from, to, sim.rng), K_SHARED, to, sim.inc[to], from, ev)
  }

  private runTask(node: number, c: Cmd<'run-task'>): void {
    const job = this.sim.work.job(c.job.id)
    if (job === undefined) throw new Error(`run-task of unknown job ${c.job.id}`)
    const gid = job.base + c.task.index
    if (this.sim.runs[node].has(gid))
      this.sim.violation(`${this.sim.key(node)} runs ${job.id}/${c.task.index} twice at once`)
    if (c.gpus.length !== Math.ceil(job.spec.resources.gpu))
      this.sim.violation(`run-task with ${c.gpus.length} GPUs`)
    this.sim.beginRun(node, gid, c.task.attempt)
  }

  runDone(run: Run): void {
    const sim = this.sim
    const job = sim.work.jobs[sim.work.jobOf[run.gid]]
    const durationMs = run.end - run.start
    const crashRate = job.plan.crashRate ?? 0
    const outcome: TaskOutcome =
      crashRate > 0 && sim.rng.next() < crashRate
        ? { status: 'crashed', error: 'worker exited', durationMs }
        : { status: 'ok', value: job.value, durationMs }
    this.feed(run.node, {
      type: 'task-finished',
      at: 0,
      cause: 'run',
      task: { job: job.id, index: run.gid - job.base, attempt: run.attempt },
      outcome,
    })
  }

  private persist(c: Cmd<'persist-results'>): void {
    for (const r of c.results) {
      const job = this.sim.work.job(r.job)
      if (job === undefined) {
        this.sim.violation(`persisted a result of unknown job ${r.job}`)
        continue
      }
      const gid = job.base + r.index
      this.persisted[gid] = r
      this.sim.accept(gid, r.outcome.status === 'ok', r.outcome.durationMs, job.slotCost)
    }
  }

  /** The owners' stored result of a task (what a restarted owner would restore). */
  storedResult(gid: number): TaskResult | undefined {
    return this.persisted[gid]
  }

  // ---- end of run ---------------------------------------------------------------------

  checkAll(): void {
    for (let i = 0; i < this.sched.length; i++) {
      const s = this.sched[i]
      if (s !== undefined) this.check(i, s)
    }
    // No task lost or counted twice: each owner's table agrees with the results it persisted.
    const sim = this.sim
    for (const job of sim.work.jobs) {
      const p = this.sched[job.owner]?.jobProgress(job.id)
      if (p === undefined) continue
      let accepted = 0
      for (let i = 0; i < job.size; i++) accepted += sim.metrics.accepted[job.base + i]
      if (p.total !== job.size || p.done + p.failed !== accepted)
        sim.violation(
          `job ${job.id}: owner counts ${p.done}+${p.failed} of ${p.total}, store has ${accepted} of ${job.size}`,
        )
    }
  }

  leftovers(): string[] {
    const out: string[] = []
    for (let i = 0; i < this.sched.length; i++) {
      const a = this.sched[i]?.advert()
      if (a !== undefined && (a.running > 0 || a.ready.length > 0))
        out.push(
          `${this.sim.key(i)} still holds tasks (${a.running} running, ${a.ready.length} ready classes)`,
        )
    }
    return out
  }

  stats(): Record<string, number> {
    const total: Record<string, number> = { ...this.deadStats }
    for (const s of this.sched) if (s !== undefined) addStats(total, s.stats())
    total.blockedNotices = this.blockedNotices
    return total
  }
}

function addStats(into: Record<string, number>, s: SchedulerStats): void {
  for (const [k, v] of Object.entries(s)) into[k] = (into[k] ?? 0) + v
}
