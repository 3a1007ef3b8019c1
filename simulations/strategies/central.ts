/**
 * Baseline: a central queue, Celery-style. Node 0 runs the broker. Owners
 * publish ready tasks to it (one message per task, sent in chunks); every
 * worker process (one per CPU slot, one per GPU) holds one credit (prefetch
 * 1): it gets one task, runs it, and sends the result with its ack to the
 * broker, which forwards the result to the owner and hands that worker its
 * next task. Each message the broker handles costs it serviceMs of its one
 * thread. A worker whose connection drops has its unacked tasks re-queued
 * (acks late). Node 0 itself never fails in any scenario.
 */
import { MSG } from '../core/metrics.ts'
import type { Run, Sim } from '../core/sim.ts'
import type { SimJob } from '../model/workload.ts'
import { Baseline, DONE, FIRST_BASELINE_KIND, HELD, type Packet, QUEUED } from './baseline.ts'
import { HEADER_BYTES, SMALL_BYTES } from './wire.ts'

const BROKER = 0
const PUBLISH_CHUNK = 64
const W_PUBLISH = 1
const W_CREDIT = 2
const W_DELIVER = 3
const W_RESULT = 4
const W_FORWARD = 5
const K_PROCESS = FIRST_BASELINE_KIND
const K_GONE = FIRST_BASELINE_KIND + 1

/** A FIFO of integers (task ids, credits). */
class IntQueue {
  private items: number[] = []
  private head = 0
  get size(): number {
    return this.items.length - this.head
  }
  push(x: number): void {
    this.items.push(x)
  }
  unshift(x: number): void {
    if (this.head > 0) this.items[--this.head] = x
    else this.items.unshift(x)
  }
  peek(): number {
    return this.items[this.head]
  }
  shift(): number {
    const x = this.items[this.head++]
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return x
  }
}

export class CentralStrategy extends Baseline {
  readonly name = 'central' as const
  private readonly serviceMs: number
  private busyUntil = 0
  private readonly queue = [new IntQueue(), new IntQueue()]
  /** Parked credits per queue: channel × 2^20 + stamp (an entry is valid while its stamp is current). */
  private readonly credits = [new IntQueue(), new IntQueue()]
  /** The broker's view of each channel: 0 unknown, 1 waiting for a task, 2 task delivered. */
  private readonly chanState: Uint8Array
  private readonly chanStamp: Int32Array
  /** Channels: node, kind (0 CPU, 1 GPU), running task. */
  private readonly chanNode: Int32Array
  private readonly chanGpu: Uint8Array
  private readonly chanTask: Int32Array
  /** The connection a channel's current task came over (the worker's side). */
  private readonly chanEpoch: Int32Array
  private readonly chanBase: Int32Array
  /** The broker's view: a node's connection is gone; which connection it is on. */
  private readonly gone: Uint8Array
  private readonly epoch: Int32Array
  private readonly acked: Uint8Array
  private readonly heldBy: Set<number>[]
  private delivered = 0
  private requeued = 0

  constructor(sim: Sim) {
    super(sim)
    this.serviceMs = sim.spec.broker?.serviceMs ?? 0.02
    const n = sim.mesh.size
    this.chanBase = new Int32Array(n + 1)
    for (let i = 0; i < n; i++) this.chanBase[i + 1] = this.chanBase[i] + sim.mesh.nodes[i].slots
    const chans = this.chanBase[n]
    this.chanNode = new Int32Array(chans)
    this.chanGpu = new Uint8Array(chans)
    this.chanTask = new Int32Array(chans).fill(-1)
    this.chanEpoch = new Int32Array(chans)
    this.chanState = new Uint8Array(chans)
    this.chanStamp = new Int32Array(chans)
    for (let i = 0; i < n; i++) {
      const m = sim.mesh.nodes[i]
      for (let k = 0; k < m.slots; k++) {
        const c = this.chanBase[i] + k
        this.chanNode[c] = i
        this.chanGpu[c] = k < m.gpus ? 1 : 0
      }
    }
    this.gone = new Uint8Array(n)
    this.epoch = new Int32Array(n)
    this.acked = new Uint8Array(sim.work.total)
    this.heldBy = sim.mesh.nodes.map(() => new Set<number>())
  }

  start(): void {
    for (let i = 0; i < this.sim.mesh.initial; i++) this.connect(i)
  }

  /** A worker (re)connects: every idle channel sends its credit. */
  private connect(node: number): void {
    if (this.sim.alive[node] === 0) return
    for (let c = this.chanBase[node]; c < this.chanBase[node + 1]; c++) {
      if (this.chanTask[c] < 0) this.send(node, BROKER, MSG.credit, SMALL_BYTES, W_CREDIT, [], c)
    }
  }

  submit(job: SimJob): void {
    this.publish(job.owner, this.roots(job))
  }

  private publish(owner: number, gids: number[]): void {
    for (let i = 0; i < gids.length; i += PUBLISH_CHUNK) {
      const chunk = gids.slice(i, i + PUBLISH_CHUNK)
      const job = this.sim.work.jobs[this.sim.work.jobOf[chunk[0]]]
      const bytes = HEADER_BYTES + chunk.length * (40 + job.plan.inputBytes)
      // One message per task, as Celery publishes them (a local publish is no network message).
      if (owner !== BROKER) this.sim.metrics.msgCount[MSG.publish] += chunk.length - 1
      this.send(owner, BROKER, MSG.publish, bytes, W_PUBLISH, chunk)
    }
  }

  protected arrive(p: Packet): void {
    if (p.to === BROKER && p.what !== W_DELIVER && p.what !== W_FORWARD) {
      if (this.serviceMs <= 0) return this.process(p)
      const units = p.what === W_PUBLISH ? p.gids.length : 1
      const at = Math.max(this.sim.now, this.busyUntil) + this.serviceMs * units
      this.busyUntil = at
      this.sim.schedule(at, K_PROCESS, 0, 0, 0, p)
      return
    }
    // A delivery sent on a connection the broker has since closed is lost with it (the task was re-queued).
    if (p.what === W_DELIVER)
      return p.tag === this.epoch[p.to] ? this.startOn(p.extra, p.gids[0], p.tag) : undefined
    if (p.what === W_FORWARD) {
      const ready = this.ownerAccepts(p.gids[0], p.x)
      if (ready.length > 0) this.publish(p.to, ready)
      return
    }
    throw new Error(`central: packet ${p.what} to node ${p.to}`)
  }

  protected timer(kind: number, a: number, _b: number, obj: unknown): void {
    if (kind === K_PROCESS) return this.process(obj as Packet)
    if (kind === K_GONE) return this.declareGone(a)
    throw new Error(`central: unknown timer ${kind}`)
  }

  /** The broker handles one message. */
  private process(p: Packet): void {
    switch (p.what) {
      case W_PUBLISH:
        for (const g of p.gids) {
          if (this.state[g] === DONE) continue
          this.state[g] = QUEUED
          this.queue[this.gpuTask(g)].push(g)
        }
        break
      case W_CREDIT:
        this.heardFrom(p.from, p.fromInc)
        // A credit only opens a channel the broker knows nothing about (a new connection).
        if (this.chanState[p.extra] === 0) this.park(p.extra)
        break
      case W_RESULT: {
        const g = p.gids[0]
        this.heardFrom(p.from, p.fromInc)
        if (this.acked[g] === 0 && this.state[g] !== DONE) {
          this.acked[g] = 1
          this.send(
            BROKER,
            this.ownerOf(g),
            MSG.forward,
            HEADER_BYTES + 56 + this.resultBytes(g),
            W_FORWARD,
            [g],
            0,
            p.x,
          )
        } else this.sim.metrics.duplicateResults++
        // The ack frees the channel for its next task, unless it came over a connection since closed.
        if (p.tag === this.epoch[p.from] && this.chanState[p.extra] === 2) {
          this.chanState[p.extra] = 0
          this.park(p.extra)
        }
        break
      }
      default:
        throw new Error(`central: broker got packet ${p.what}`)
    }
    this.dispatch()
  }

  /** A message from a node the broker had given up on: it reconnected, its idle workers ask again. */
  private heardFrom(node: number, fromInc: number): void {
    // Only a live connection counts (a packet a node sent before it died proves nothing).
    if (this.gone[node] === 0 || this.sim.alive[node] === 0 || this.sim.inc[node] !== fromInc) return
    this.gone[node] = 0
    this.connect(node)
  }

  private park(chan: number): void {
    this.chanState[chan] = 1
    const stamp = (this.chanStamp[chan] + 1) & 0xfffff
    this.chanStamp[chan] = stamp
    this.credits[this.chanGpu[chan]].push(chan * 0x100000 + stamp)
  }

  /** Hands queued tasks to parked credits. */
  private dispatch(): void {
    for (let k = 0; k < 2; k++) {
      const q = this.queue[k]
      const cr = this.credits[k]
      while (q.size > 0 && cr.size > 0) {
        if (this.state[q.peek()] !== QUEUED) {
          q.shift()
          continue
        }
        const entry = cr.shift()
        const chan = Math.floor(entry / 0x100000)
        const node = this.chanNode[chan]
        if (this.chanState[chan] !== 1 || this.chanStamp[chan] !== entry % 0x100000 || this.gone[node] === 1)
          continue
        this.chanState[chan] = 2
        const g = q.shift()
        this.state[g] = HELD
        this.holder[g] = node
        this.heldBy[node].add(g)
        this.delivered++
        if (this.serviceMs > 0) this.busyUntil = Math.max(this.sim.now, this.busyUntil) + this.serviceMs
        const job = this.sim.work.jobs[this.sim.work.jobOf[g]]
        this.send(
          BROKER,
          node,
          MSG.deliver,
          HEADER_BYTES + 40 + job.plan.inputBytes,
          W_DELIVER,
          [g],
          chan,
          0,
          this.epoch[node],
        )
      }
    }
  }

  private startOn(chan: number, g: number, epoch: number): void {
    if (this.chanTask[chan] >= 0) throw new Error(`central: channel ${chan} got a second task`)
    this.chanTask[chan] = g
    this.chanEpoch[chan] = epoch
    this.sim.beginRun(this.chanNode[chan], g, 0)
  }

  runDone(run: Run): void {
    const node = run.node
    let chan = -1
    for (let c = this.chanBase[node]; c < this.chanBase[node + 1]; c++)
      if (this.chanTask[c] === run.gid) chan = c
    if (chan < 0) throw new Error(`central: run of ${run.gid} on node ${node} has no channel`)
    this.chanTask[chan] = -1
    const bytes = HEADER_BYTES + 56 + this.resultBytes(run.gid)
    this.send(
      node,
      BROKER,
      MSG.brokerResult,
      bytes,
      W_RESULT,
      [run.gid],
      chan,
      run.end - run.start,
      this.chanEpoch[chan],
    )
  }

  crashed(node: number, detectMs: number): void {
    for (let c = this.chanBase[node]; c < this.chanBase[node + 1]; c++) this.chanTask[c] = -1
    this.sim.schedule(this.sim.now + detectMs, K_GONE, node, 0, 0, undefined)
  }

  /** The broker sees the node's connection drop: its unacked tasks go back to the queue front. */
  private declareGone(node: number): void {
    if (this.gone[node] === 1) return
    this.gone[node] = 1
    this.epoch[node]++
    for (let c = this.chanBase[node]; c < this.chanBase[node + 1]; c++) this.chanState[c] = 0
    for (const g of this.heldBy[node]) {
      if (this.state[g] !== HELD || this.holder[g] !== node) continue
      if (this.acked[g] === 1) continue
      this.state[g] = QUEUED
      this.holder[g] = -1
      this.queue[this.gpuTask(g)].unshift(g)
      this.requeued++
    }
    this.heldBy[node].clear()
    this.dispatch()
    // Cut off only briefly, or already back: the worker reconnects at once.
    if (this.sim.alive[node] === 1 && this.sim.net.reachable(node, BROKER))
      this.heardFrom(node, this.sim.inc[node])
  }

  recovered(node: number): void {
    this.connect(node)
  }

  joined(node: number): void {
    this.connect(node)
  }

  cut(nodes: number[], detectMs: number): void {
    for (const n of nodes) this.sim.schedule(this.sim.now + detectMs, K_GONE, n, 0, 0, undefined)
  }

  healed(nodes: number[]): void {
    for (const n of nodes) if (this.sim.alive[n] === 1) this.connect(n)
  }

  protected override ownerAccepts(gid: number, durationMs: number): number[] {
    if (this.state[gid] === HELD) this.heldBy[this.holder[gid]]?.delete(gid)
    return super.ownerAccepts(gid, durationMs)
  }

  private gpuTask(g: number): number {
    return this.sim.work.jobs[this.sim.work.jobOf[g]].gpu ? 1 : 0
  }

  private ownerOf(g: number): number {
    return this.sim.work.jobs[this.sim.work.jobOf[g]].owner
  }

  private resultBytes(g: number): number {
    return this.sim.work.jobs[this.sim.work.jobOf[g]].plan.resultBytes
  }

  protected checkTables(): void {
    for (let c = 0; c < this.chanTask.length; c++) {
      const g = this.chanTask[c]
      if (g >= 0 && this.sim.runs[this.chanNode[c]].get(g) === undefined)
        this.sim.violation(`central: channel ${c} holds task ${g} that is not running`)
    }
  }

  leftovers(): string[] {
    const out: string[] = []
    if (this.queue[0].size + this.queue[1].size > 0) out.push('central: broker queue not empty')
    return out
  }

  stats(): Record<string, number> {
    return {
      delivered: this.delivered,
      requeued: this.requeued,
      resent: this.resent,
      brokerBusyUntil: this.busyUntil,
    }
  }
}
