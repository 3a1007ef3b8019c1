/**
 * The members this node has heard from: their latest capacity advert, when it
 * arrived and the last measured ping. Entries expire after missed heartbeats.
 * Pure bookkeeping: the clock is passed in.
 */
import type { CapacityAdvert } from '../protocol/advert/codec.ts'

export interface PeerEntry {
  peerId: string
  advert: CapacityAdvert
  /** Local time the latest advert arrived. */
  lastSeenAt: number
  rttMs?: number
}

export class PeerTable {
  private readonly entries = new Map<string, PeerEntry>()
  private readonly expiryMs: number

  constructor(expiryMs: number) {
    this.expiryMs = expiryMs
  }

  /** Records an advert; returns true when the peer is new (or back after expiring). */
  upsert(advert: CapacityAdvert, now: number): boolean {
    const prev = this.entries.get(advert.peerId)
    this.entries.set(advert.peerId, { peerId: advert.peerId, advert, lastSeenAt: now, rttMs: prev?.rttMs })
    return prev === undefined
  }

  lastSeq(peerId: string): number | undefined {
    return this.entries.get(peerId)?.advert.seq
  }

  setRtt(peerId: string, rttMs: number): void {
    const e = this.entries.get(peerId)
    if (e) e.rttMs = rttMs
  }

  get(peerId: string): PeerEntry | undefined {
    return this.entries.get(peerId)
  }

  delete(peerId: string): boolean {
    return this.entries.delete(peerId)
  }

  /** Removes and returns the peers silent for longer than the expiry. */
  expire(now: number): string[] {
    const gone: string[] = []
    for (const [id, e] of this.entries) {
      if (now - e.lastSeenAt > this.expiryMs) {
        this.entries.delete(id)
        gone.push(id)
      }
    }
    return gone
  }

  list(): PeerEntry[] {
    return [...this.entries.values()].sort((a, b) => a.peerId.localeCompare(b.peerId))
  }

  get size(): number {
    return this.entries.size
  }
}
