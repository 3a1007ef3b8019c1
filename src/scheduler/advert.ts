/**
 * When to publish this node's advert: on a change others act on at once (free
 * slots or GPUs, what it accepts, ready tasks appearing, growing or halving),
 * at most every advertMinIntervalMs, and as a heartbeat every advertIntervalMs
 * carrying everything (running tasks, exact counts, mean task time).
 */
import type { Holder } from './holder.ts'
import { acceptsSignature } from './policy.ts'
import type { Runtime } from './runtime.ts'
import type { SchedulerAdvert } from './types.ts'

export function buildAdvert(holder: Holder): SchedulerAdvert {
  const pool = holder.pool
  return {
    slots: pool.slots,
    // What others may use: the slots the owner policy lends right now.
    freeSlots: holder.foreignFree(),
    memoryMB: pool.memoryMB,
    freeMemoryMB: pool.memoryMB - pool.usedMemoryMB,
    gpus: pool.gpuIndexes.length,
    freeGpus: pool.freeGpus,
    // What a thief could be granted: other owners' tasks only while they are handed on (steal.ts).
    ready: holder.queue.readyClasses(!holder.handsOn()),
    running: holder.running,
    meanTaskMs: holder.meanMs ?? 0,
    accepts: holder.policy.accepts,
  }
}

export class Advertiser {
  private lastAt = Number.NEGATIVE_INFINITY
  /** The last advert published. */
  private last: SchedulerAdvert | undefined
  private changed = false

  maybePublish(rt: Runtime, holder: Holder): void {
    const since = rt.now - this.lastAt
    if (this.last !== undefined && since < rt.s.advertIntervalMs) {
      // Called after every event: compare in place, and build an advert only to publish it.
      const changed = !this.matchesLast(holder, this.last)
      if (!changed || since < rt.s.advertMinIntervalMs) {
        this.changed = changed
        return
      }
    }
    const advert = buildAdvert(holder)
    this.lastAt = rt.now
    this.last = advert
    this.changed = false
    rt.emit({ type: 'publish-advert', cause: rt.cause, advert })
  }

  /**
   * Whether the last advert still tells peers what they act on at once, without building a new
   * one. Running tasks (peers only show them) and ready counts that moved less than half wait
   * for the heartbeat: republished at every such change, a busy node's advert went out every
   * advertMinIntervalMs, and every member checked, forwarded and fed each one to its scheduler.
   */
  private matchesLast(holder: Holder, last: SchedulerAdvert): boolean {
    if (holder.foreignFree() !== last.freeSlots || holder.pool.freeGpus !== last.freeGpus) return false
    // A policy change replaces the policy (Holder.policy), never edits it: the same object is the same policy.
    const accepts = holder.policy.accepts
    if (accepts !== last.accepts && acceptsSignature(accepts) !== acceptsSignature(last.accepts)) return false
    return holder.queue.readyAsAdvertised(last.ready, !holder.handsOn())
  }

  nextDeadline(rt: Runtime): number | undefined {
    if (this.last === undefined) return undefined
    return this.lastAt + (this.changed ? rt.s.advertMinIntervalMs : rt.s.advertIntervalMs)
  }
}
