/**
 * Work stealing. Thief side: when to steal, from whom (weighted random over
 * peers advertising ready work this node can run, nearer peers preferred),
 * how many tasks to ask for, and backoff after failed or empty steals.
 * Victim side: which queued tasks to hand over.
 */
import type { HeldTask, Holder } from './holder.ts'
import type { PeerView } from './peers.ts'
import type { LaneFilter } from './queue.ts'
import { fits } from './resources.ts'
import type { Runtime, Settings } from './runtime.ts'
import type { Batch, JobSpec, PeerKey, Resources } from './types.ts'

/**
 * Tasks to ask for (or push) for `freeSlots` free slots: enough to keep each
 * slot busy for prefetchFactor tasks or targetBufferMs of work, whichever is more.
 */
export function batchSize(
  freeSlots: number,
  ownMeanMs: number | undefined,
  peerMeanMs: number,
  s: Settings,
): number {
  const mean = ownMeanMs !== undefined && ownMeanMs > 0 ? ownMeanMs : peerMeanMs > 0 ? peerMeanMs : undefined
  const perSlot = mean === undefined ? s.prefetchFactor : Math.max(s.prefetchFactor, s.targetBufferMs / mean)
  return Math.min(s.maxBatch, Math.max(1, Math.ceil(freeSlots * perSlot)))
}

/** Ready tasks a peer advertises in classes that fit `free`. */
function fittingReady(view: PeerView, peer: PeerKey, free: Resources): number {
  const info = view.peers.get(peer)
  if (info === undefined) return 0
  let n = 0
  for (const c of info.advert.ready) if (c.count > 0 && fits(c.resources, free)) n += c.count
  return n
}

/**
 * A victim drawn at random, weighted by fitting ready tasks / (1 + rtt), among peers advertising
 * at least `minReady` of them.
 */
export function chooseVictim(
  view: PeerView,
  free: Resources,
  random: () => number,
  minReady = 1,
): PeerKey | undefined {
  const candidates: PeerKey[] = []
  const weights: number[] = []
  let total = 0
  for (const peer of view.withReady) {
    const n = fittingReady(view, peer, free)
    if (n === 0 || n < minReady) continue
    const w = n / (1 + (view.peers.get(peer)?.rttMs ?? 1))
    candidates.push(peer)
    weights.push(w)
    total += w
  }
  if (candidates.length === 0) return undefined
  let x = random() * total
  for (let i = 0; i < candidates.length; i++) {
    x -= weights[i]
    if (x < 0) return candidates[i]
  }
  return candidates[candidates.length - 1]
}

/** Builds the wire batch for tasks taken from the queue. */
export function toBatch(tasks: HeldTask[]): Batch {
  const jobs = new Map<string, JobSpec>()
  for (const t of tasks) jobs.set(t.jobId, t.job.spec)
  return { jobs: [...jobs.values()], tasks: tasks.map((t) => t.desc) }
}

/**
 * Victim: how many of its ready tasks fitting the thief's `free` to grant:
 * about half, at most `max`; none if its only such task can start here now.
 */
export function grantCount(
  holder: Holder,
  free: Resources,
  max: number,
  s: Settings,
  laneOk?: LaneFilter,
): number {
  const ready = holder.queue.countFitting((r) => fits(r, free), laneOk)
  if (ready === 0) return 0
  if (ready === 1 && holder.queue.countFitting((r) => holder.pool.canStart(r, holder.depth())) > 0) return 0
  return Math.max(0, Math.min(Math.floor(max), s.maxBatch, Math.ceil(ready / 2)))
}

/**
 * Mean task time (ms) up to which a thief steals ahead: with short tasks a steal's round trip
 * (a few ms between daemons, more on a busy machine) is a slot idle for a good part of a task,
 * while one task more per slot held here delays little. Longer tasks are stolen only for a free
 * slot, so a long task is not held in one node's queue while another's slot frees. At 100 ms the
 * simulator's multi-owner and DAG runs moved by more than their spread (1.32 -> 1.59 and 2.27 ->
 * 2.38 on seed 1, fast nodes running their 100+ ms tasks in under 100); at 50 they are unchanged.
 */
export const STEAL_AHEAD_MAX_MS = 50

/**
 * What a busy thief asks for when it steals ahead (one slot's worth, to queue behind the tasks it
 * runs), or undefined when it should not: every slot runs a task, nothing waits in its queue, the
 * owner policy lends slots, and its tasks are short (STEAL_AHEAD_MAX_MS).
 */
export function aheadFree(holder: Holder): Resources | undefined {
  const mean = holder.meanMs
  if (mean === undefined || mean > STEAL_AHEAD_MAX_MS) return undefined
  if (holder.running === 0 || holder.queue.size > 0 || holder.pool.freeSlots > 0) return undefined
  const p = holder.policy
  if (p.suspended || !p.accepts.foreign || p.foreignSlots < 1) return undefined
  return { cpu: 1, gpu: 0, memoryMB: holder.pool.memoryMB }
}

interface InFlight {
  readonly requestId: number
  readonly to: PeerKey
  readonly sentAt: number
  /** Tasks asked for. */
  readonly max: number
}

export class Thief {
  private readonly rt: Runtime
  private inFlight: InFlight | undefined
  private nextId = 1
  private backoffMs = 0
  private backoffUntil = Number.NEGATIVE_INFINITY
  private backoffSince = Number.NEGATIVE_INFINITY

  constructor(rt: Runtime) {
    this.rt = rt
  }

  get stealing(): boolean {
    return this.inFlight !== undefined
  }

  /**
   * Steals if this node has a free slot, nothing it can start, and a victim; or, when tasks are
   * short, steals ahead (see `aheadFree`).
   */
  maybeSteal(holder: Holder, view: PeerView): void {
    if (this.inFlight !== undefined || this.rt.now < this.backoffUntil) return
    if (view.withReady.size === 0) return
    let free: Resources
    let minReady = 1
    if (holder.pool.freeSlots >= 1) {
      // Stolen tasks are other owners' (mostly): steal only for the slots the owner policy lends.
      const lend = holder.foreignFree()
      if (lend < 1) return
      free = { ...holder.pool.free(), cpu: lend }
      const depth = holder.depth()
      if (holder.queue.countFitting((r) => holder.pool.canStart(r, depth)) > 0) return
    } else {
      const ahead = aheadFree(holder)
      if (ahead === undefined) return
      free = ahead
      // Only from a victim with plenty left: a thief must not drain a peer that is as busy as it is.
      minReady = 2 * batchSize(1, holder.meanMs, 0, this.rt.s)
    }
    const to = chooseVictim(view, free, () => this.rt.rng.next(), minReady)
    if (to === undefined) return
    const peerMean = view.peers.get(to)?.advert.meanTaskMs ?? 0
    const max = batchSize(free.cpu, holder.meanMs, peerMean, this.rt.s)
    const requestId = this.nextId++
    this.inFlight = { requestId, to, sentAt: this.rt.now, max }
    this.rt.stats.stealsSent++
    const accepts = holder.policy.accepts
    this.rt.emit({ type: 'send-steal', cause: this.rt.cause, to, requestId, free, max, accepts })
  }

  /** The tasks the steal in flight with this id asked for; undefined for any other (a late grant). */
  asked(requestId: number): number | undefined {
    return this.inFlight?.requestId === requestId ? this.inFlight.max : undefined
  }

  /** A grant arrived (tasks are accepted by the caller whatever the request id). */
  granted(requestId: number, count: number): void {
    if (this.inFlight?.requestId !== requestId) return
    this.inFlight = undefined
    if (count > 0) {
      this.rt.stats.stealsGranted++
      this.backoffMs = 0
      this.backoffUntil = Number.NEGATIVE_INFINITY
    } else {
      this.rt.stats.stealsEmpty++
      this.backOff()
    }
  }

  failed(requestId: number): void {
    if (this.inFlight?.requestId !== requestId) return
    this.inFlight = undefined
    this.rt.stats.stealsEmpty++
    this.backOff()
  }

  peerGone(peer: PeerKey): void {
    if (this.inFlight?.to === peer) this.failed(this.inFlight.requestId)
  }

  /** A peer advertises more ready work: may end a backoff that has lasted stealBackoffMinMs. */
  moreReadyAdvertised(): void {
    const now = this.rt.now
    if (now < this.backoffUntil && now - this.backoffSince >= this.rt.s.stealBackoffMinMs)
      this.backoffUntil = now
  }

  /** A steal unanswered for leaseTimeoutMs counts as failed. */
  expire(): void {
    const f = this.inFlight
    if (f !== undefined && f.sentAt + this.rt.s.leaseTimeoutMs <= this.rt.now) this.failed(f.requestId)
  }

  nextDeadline(): number | undefined {
    if (this.inFlight !== undefined) return this.inFlight.sentAt + this.rt.s.leaseTimeoutMs
    return this.backoffUntil > this.rt.now ? this.backoffUntil : undefined
  }

  private backOff(): void {
    const s = this.rt.s
    this.backoffMs =
      this.backoffMs === 0 ? s.stealBackoffMinMs : Math.min(s.stealBackoffMaxMs, this.backoffMs * 2)
    const delay = this.backoffMs * (0.5 + 0.5 * this.rt.rng.next())
    this.backoffSince = this.rt.now
    this.backoffUntil = this.rt.now + delay
  }
}
