/**
 * Receivers drop a signer's adverts closer together than ADVERT_MIN_GAP_MS, so a node's own
 * adverts keep at least twice that apart: a publish asked for sooner (a heartbeat, then a change
 * a few ms later) goes out a moment later, built then, and several such asks go out as one.
 */
import { pino } from 'pino'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ADVERT_MIN_GAP_MS, Adverts } from '../../src/node/adverts.ts'
import { decodeAdvert } from '../../src/protocol/advert/codec.ts'

describe('advert pacing', () => {
  afterEach(() => vi.useRealTimers())

  it('keeps its own adverts at least twice the receivers’ gap apart, the last state in each', async () => {
    vi.useFakeTimers()
    const sent: Array<{ at: number; freeSlots: number }> = []
    let freeSlots = 4
    const node = {
      peerId: { toString: () => '12D3KooWEGVRPZnhYFNYSjZHXpwyJVqonE9VFQneEtNsKBqYZ1of' },
      services: {
        pubsub: {
          publish: async (_topic: string, data: Uint8Array) => {
            sent.push({ at: Date.now(), freeSlots: decodeAdvert(data).sched.freeSlots })
          },
        },
      },
    } as never
    const adverts = new Adverts(node, {
      mesh: 'm',
      intervalMs: 1000,
      expiryFactor: 3,
      cores: 4,
      gpus: [],
      memoryTotalMB: 1000,
      log: pino({ level: 'silent' }),
      sched: () => ({
        slots: 4,
        freeSlots,
        memoryMB: 1000,
        freeMemoryMB: 1000,
        gpus: 0,
        freeGpus: 0,
        ready: [],
        running: 4 - freeSlots,
        meanTaskMs: 0,
      }),
      busyGpus: () => new Set(),
      onPeerUp: () => {},
      onAdvert: () => {},
      onPeerGone: () => {},
      certificate: () => new Uint8Array(16),
    })
    adverts.publish()
    vi.advanceTimersByTime(5)
    freeSlots = 3
    adverts.publish()
    freeSlots = 2
    adverts.publish()
    expect(sent).toHaveLength(1)
    await vi.advanceTimersByTimeAsync(2 * ADVERT_MIN_GAP_MS)
    expect(sent).toHaveLength(2)
    expect(sent[1].at - sent[0].at).toBeGreaterThanOrEqual(2 * ADVERT_MIN_GAP_MS)
    expect(sent[1].freeSlots).toBe(2)
    adverts.stop()
  })
})
