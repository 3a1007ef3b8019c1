/**
 * The advert's optional `flows` (who the sender stole from or pushed to
 * lately): round trip, older adverts without it, bounds, malformed entries.
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encode } from 'cborg'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  type AdvertFlow,
  type CapacityAdvert,
  decodeAdvert,
  encodeAdvert,
  MAX_ADVERT_FLOW_AGE_MS,
  MAX_ADVERT_FLOWS,
  validateAdvert,
} from '../../../src/protocol/advert/codec.ts'
import { PEER_A, PEER_B } from '../fixtures.ts'

const NOW = 1_800_000_000_000
let peers: string[] = []

beforeAll(async () => {
  peers = await Promise.all(
    Array.from({ length: 20 }, async () => peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()),
  )
})

function advert(flows?: AdvertFlow[]): CapacityAdvert {
  return {
    v: 1,
    mesh: 'default',
    peerId: PEER_A,
    seq: 7,
    sentAtMs: NOW,
    version: '0.1.0',
    cpus: 4,
    load1: 0.5,
    memoryTotalMB: 8000,
    memoryFreeMB: 4000,
    gpus: [],
    sched: {
      slots: 4,
      freeSlots: 0,
      memoryMB: 8000,
      freeMemoryMB: 4000,
      gpus: 0,
      freeGpus: 0,
      ready: [],
      running: 4,
      meanTaskMs: 20,
    },
    ...(flows ? { flows } : {}),
  }
}

function flow(peer: string, o: Partial<AdvertFlow> = {}): AdvertFlow {
  return { peer, kind: 'steal', out: true, tasks: 12, agoMs: 300, ...o }
}

/** The advert on the wire with its flows replaced by anything. */
function wire(flows: unknown): Uint8Array {
  const { v: _v, ...rest } = advert()
  return encode({ v: 1, t: 'advert', ...rest, flows })
}

const ctx = { mesh: 'default', from: PEER_A, now: NOW, maxAgeMs: 60_000 }

describe('advert flows', () => {
  it('round-trips, at the bound too', () => {
    const some = advert([flow(PEER_B), flow(peers[0], { kind: 'push', out: false, tasks: 0, agoMs: 0 })])
    expect(decodeAdvert(encodeAdvert(some))).toEqual(some)
    const full = advert(
      peers.slice(0, MAX_ADVERT_FLOWS).map((p, i) => flow(p, { tasks: 1 << 30, agoMs: i * 1000 })),
    )
    const bytes = encodeAdvert(full)
    expect(decodeAdvert(bytes)).toEqual(full)
    expect(validateAdvert(bytes, ctx)).toEqual({ ok: true, advert: full })
    // 16 entries cost about 1.4 KiB of the advert's 16 KiB.
    expect(bytes.byteLength - encodeAdvert(advert()).byteLength).toBeLessThan(1600)
  })

  it('is optional: an advert without it (an older sender) decodes as before', () => {
    const old = advert()
    const decoded = decodeAdvert(encodeAdvert(old))
    expect(decoded).toEqual(old)
    expect('flows' in decoded).toBe(false)
    expect(decodeAdvert(encodeAdvert(advert([]))).flows).toEqual([])
  })

  it('refuses more than 16 entries, and malformed entries naming the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [peers.slice(0, MAX_ADVERT_FLOWS + 1).map((p) => flow(p)), /flows: more than 16/],
      [[flow('not-a-peer')], /flows\[0\]\.peer: not a peer ID/],
      [[flow(`${PEER_B}x`)], /flows\[0\]\.peer/],
      [[flow('')], /flows\[0\]\.peer/],
      [[flow(PEER_B, { kind: 'gift' as 'steal' })], /flows\[0\]\.kind/],
      [[flow(PEER_B, { out: 1 as unknown as boolean })], /flows\[0\]\.out/],
      [[flow(PEER_B, { tasks: -1 })], /flows\[0\]\.tasks/],
      [[flow(PEER_B, { tasks: 1.5 })], /flows\[0\]\.tasks/],
      [[flow(PEER_B, { tasks: 2 ** 31 })], /flows\[0\]\.tasks/],
      [[flow(PEER_B, { agoMs: MAX_ADVERT_FLOW_AGE_MS + 1 })], /flows\[0\]\.agoMs/],
      [[{ ...flow(PEER_B), extra: 1 }], /flows\[0\]: unexpected field/],
      [[{ peer: PEER_B, kind: 'steal', out: true, tasks: 1 }], /flows\[0\]\.agoMs: missing/],
      [[{ ...flow(PEER_B), v: 1 }], /flows\[0\]: unexpected field/],
      [{ [PEER_B]: flow(PEER_B) }, /flows/],
      ['x', /flows/],
      [null, /flows/],
    ]
    for (const [flows, detail] of cases) {
      const result = validateAdvert(wire(flows), ctx)
      expect(result.ok, String(detail)).toBe(false)
      if (!result.ok) {
        expect(result.reason).toBe('malformed')
        expect(result.detail).toMatch(detail)
      }
    }
  })

  it('will not send what it would refuse', () => {
    expect(() => encodeAdvert(advert([flow('nobody')]))).toThrow(/not a peer ID/)
    expect(() => encodeAdvert(advert(peers.slice(0, 17).map((p) => flow(p))))).toThrow(/more than 16/)
  })
})
