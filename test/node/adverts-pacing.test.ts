/**
 * Receivers drop a signer's adverts closer together than ADVERT_MIN_GAP_MS, so a node's own
 * adverts keep at least twice that apart: a publish asked for sooner (a heartbeat, then a change
 * a few ms later) goes out a moment later, built then, and several such asks go out as one.
 */
import { afterEach, describe, expect, it, vi } from 'vitest'
import { ADVERT_MIN_GAP_MS, Adverts } from '../../src/node/adverts.ts'
import { decodeAdvert } from '../../src/protocol/advert/codec.ts'
import { advertsOptions } from './adverts-options.ts'

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
      ...advertsOptions(),
      sched: () => advertsOptions({ freeSlots, running: 4 - freeSlots }).sched(),
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
