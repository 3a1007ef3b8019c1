/**
 * When to publish this node's advert: on a material change (free slots,
 * ready counts, running), at most every advertMinIntervalMs, and as a
 * heartbeat every advertIntervalMs.
 */
import type { Holder } from './holder.ts'
import { advertSignature } from './peers.ts'
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
    ready: holder.queue.readyClasses(),
    running: holder.running,
    meanTaskMs: holder.meanMs ?? 0,
    accepts: holder.policy.accepts,
  }
}

export class Advertiser {
  private lastAt = Number.NEGATIVE_INFINITY
  private lastSignature: string | undefined
  private changed = false

  maybePublish(rt: Runtime, holder: Holder): void {
    const advert = buildAdvert(holder)
    const signature = advertSignature(advert)
    const since = rt.now - this.lastAt
    const due =
      this.lastSignature === undefined ||
      since >= rt.s.advertIntervalMs ||
      (signature !== this.lastSignature && since >= rt.s.advertMinIntervalMs)
    if (!due) {
      this.changed = signature !== this.lastSignature
      return
    }
    this.lastAt = rt.now
    this.lastSignature = signature
    this.changed = false
    rt.emit({ type: 'publish-advert', cause: rt.cause, advert })
  }

  nextDeadline(rt: Runtime): number | undefined {
    if (this.lastSignature === undefined) return undefined
    return this.lastAt + (this.changed ? rt.s.advertMinIntervalMs : rt.s.advertIntervalMs)
  }
}
