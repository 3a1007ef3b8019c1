/**
 * The node's view of its peers: the latest scheduler advert of each (and the
 * round-trip time when the driver knows it), with the two sets the policies
 * need kept up to date incrementally: peers advertising ready work (steal
 * victims) and idle peers not yet pushed to since their advert changed.
 */
import { acceptsSignature } from './policy.ts'
import type { NodeSize } from './resources.ts'
import type { PeerKey, SchedulerAdvert } from './types.ts'

export interface PeerInfo {
  advert: SchedulerAdvert
  rttMs: number | undefined
  readyTotal: number
  /** freeSlots > 0 and nothing ready. */
  idle: boolean
  signature: string
  /** When this node last pushed to the peer. */
  pushedAt: number
}

export interface AdvertChange {
  /** The advert differs materially from the last one (or is the first). */
  changed: boolean
  /** It shows more ready tasks than before. */
  moreReady: boolean
  /** What the peer accepts changed (or it is new). */
  acceptsChanged: boolean
}

export function advertSignature(a: SchedulerAdvert): string {
  let s = `${a.freeSlots}|${a.freeGpus}|${a.running}|${acceptsSignature(a.accepts)}`
  for (const c of a.ready) s += `|${c.resources.cpu}/${c.resources.gpu}/${c.resources.memoryMB}:${c.count}`
  return s
}

export function sizeOf(a: SchedulerAdvert): NodeSize {
  return { slots: a.slots, memoryMB: a.memoryMB, gpus: a.gpus }
}

export class PeerView {
  readonly peers = new Map<PeerKey, PeerInfo>()
  /** Peers whose advert shows ready tasks. */
  readonly withReady = new Set<PeerKey>()
  /** Idle peers a push may go to. */
  readonly pushable = new Set<PeerKey>()
  /** Peers whose advert shows a free slot and nothing ready. */
  readonly idle = new Set<PeerKey>()

  /**
   * Records a peer's advert. An idle peer becomes a push target again when its
   * advert changed, or when it still looks idle `quietMs` after the last push
   * to it (its tasks came and went between two identical adverts).
   */
  update(
    peer: PeerKey,
    advert: SchedulerAdvert,
    rttMs: number | undefined,
    now: number,
    quietMs: number,
  ): AdvertChange {
    const prev = this.peers.get(peer)
    let readyTotal = 0
    for (const c of advert.ready) readyTotal += c.count
    const signature = advertSignature(advert)
    const idle = advert.freeSlots > 0 && readyTotal === 0
    const pushedAt = prev?.pushedAt ?? Number.NEGATIVE_INFINITY
    const info: PeerInfo = { advert, rttMs: rttMs ?? prev?.rttMs, readyTotal, idle, signature, pushedAt }
    this.peers.set(peer, info)
    if (readyTotal > 0) this.withReady.add(peer)
    else this.withReady.delete(peer)
    if (idle) this.idle.add(peer)
    else this.idle.delete(peer)
    const changed = prev === undefined || prev.signature !== signature
    if (!idle) this.pushable.delete(peer)
    else if (changed || now - pushedAt >= quietMs) this.pushable.add(peer)
    const acceptsChanged =
      prev === undefined || acceptsSignature(prev.advert.accepts) !== acceptsSignature(advert.accepts)
    return { changed, moreReady: readyTotal > (prev?.readyTotal ?? 0), acceptsChanged }
  }

  pushed(peer: PeerKey, now: number): void {
    this.pushable.delete(peer)
    const info = this.peers.get(peer)
    if (info !== undefined) info.pushedAt = now
  }

  /** A lease from an idle peer that holds nothing of ours makes it a push target again. */
  leaseFrom(peer: PeerKey): void {
    if (this.peers.get(peer)?.idle) this.pushable.add(peer)
  }

  forget(peer: PeerKey): void {
    this.peers.delete(peer)
    this.withReady.delete(peer)
    this.pushable.delete(peer)
    this.idle.delete(peer)
  }

  sizes(): NodeSize[] {
    const out: NodeSize[] = []
    for (const p of this.peers.values()) out.push(sizeOf(p.advert))
    return out
  }
}
