import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encode } from 'cborg'
import { beforeAll, describe, expect, it } from 'vitest'
import {
  ADVERT_MAX_BYTES,
  type CapacityAdvert,
  encodeAdvert,
  validateAdvert,
} from '../../../src/protocol/advert/codec.ts'
import { MAX_ACCESS_PEERS } from '../../../src/protocol/schemas.ts'
import { stealRequestCodec } from '../../../src/protocol/steal/codec.ts'
import { ACCEPTS_ALL } from '../../../src/scheduler/policy.ts'
import type { Accepts } from '../../../src/scheduler/types.ts'
import { PEER_A, PEER_B } from '../fixtures.ts'

const NOW = 1_800_000_000_000
const ctx = { mesh: 'm', from: PEER_A, now: NOW, maxAgeMs: 60_000 }

function advert(accepts?: unknown): CapacityAdvert {
  const sched = {
    slots: 4,
    freeSlots: 2,
    memoryMB: 1000,
    freeMemoryMB: 1000,
    gpus: 0,
    freeGpus: 0,
    ready: [],
    running: 0,
    meanTaskMs: 0,
    ...(accepts === undefined ? {} : { accepts }),
  }
  return {
    v: 1,
    mesh: 'm',
    peerId: PEER_A,
    seq: 1,
    sentAtMs: NOW,
    version: '0.1.0',
    cpus: 4,
    load1: 0,
    memoryTotalMB: 1000,
    memoryFreeMB: 1000,
    gpus: [],
    sched: sched as CapacityAdvert['sched'],
  }
}

/** As it would be on the wire (the encoder refuses to send a bad advert). */
function wire(accepts: unknown): Uint8Array {
  const { v: _v, ...rest } = advert(accepts)
  return encode({ v: 1, t: 'advert', ...rest })
}

const some: Accepts = {
  v: 1,
  foreign: true,
  reason: '',
  function: { all: true, peers: [] },
  command: { all: false, peers: [PEER_B] },
  gpu: { all: false, peers: [] },
}

let many: string[] = []
beforeAll(async () => {
  many = await Promise.all(
    Array.from({ length: MAX_ACCESS_PEERS + 1 }, async () =>
      peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString(),
    ),
  )
})

describe('accepts in adverts (v1)', () => {
  it('round-trips, and an advert without it (an older node) still validates', () => {
    const r = validateAdvert(encodeAdvert(advert(some)), ctx)
    expect(r.ok && r.advert.sched.accepts).toEqual(some)
    const old = validateAdvert(encodeAdvert(advert()), ctx)
    expect(old.ok && old.advert.sched.accepts).toBeUndefined()
  })

  it.each([
    ['an unknown version', { ...some, v: 2 }, /accepts\.v/],
    ['a missing kind', { ...ACCEPTS_ALL, command: null }, /accepts\.command/],
    ['a bad peer ID', { ...some, command: { all: false, peers: ['bob'] } }, /not a peer ID/],
    ['an extra field', { ...some, shell: true }, /unexpected field "shell"/],
    ['a long reason', { ...some, reason: 'x'.repeat(257) }, /accepts\.reason/],
  ])('refuses %s', (_what, accepts, detail) => {
    const r = validateAdvert(wire(accepts), ctx)
    expect(r.ok).toBe(false)
    if (!r.ok) {
      expect(r.reason).toBe('malformed')
      expect(r.detail).toMatch(detail)
    }
  })

  it(`lists at most ${MAX_ACCESS_PEERS} peers per kind; the largest fits one advert`, () => {
    const tooMany = { ...some, command: { all: false, peers: many } }
    expect(validateAdvert(wire(tooMany), ctx).ok).toBe(false)
    const full = { all: false, peers: many.slice(0, MAX_ACCESS_PEERS) }
    const largest = { ...some, reason: 'r'.repeat(256), function: full, command: full, gpu: full }
    const bytes = encodeAdvert(advert(largest))
    expect(bytes.byteLength).toBeLessThan(ADVERT_MAX_BYTES)
    expect(validateAdvert(bytes, ctx).ok).toBe(true)
  })
})

describe('accepts in steal requests', () => {
  it('is optional and validated', () => {
    const free = { cpu: 2, gpu: 0, memoryMB: 100 }
    const plain = { t: 'steal' as const, free, max: 4 }
    expect(stealRequestCodec.decode(stealRequestCodec.encode(plain))).toEqual(plain)
    const withPolicy = { ...plain, accepts: some }
    expect(stealRequestCodec.decode(stealRequestCodec.encode(withPolicy))).toEqual(withPolicy)
    const bad = encode({ v: 1, ...plain, accepts: { ...some, foreign: 'yes' } })
    expect(() => stealRequestCodec.decode(bad)).toThrow(/accepts\.foreign/)
  })
})
