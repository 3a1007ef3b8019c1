import { encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import { LocalProtocolError, RemoteProtocolError } from '../../../src/errors.ts'
import {
  ADVERT_MAX_BYTES,
  type AdvertContext,
  type CapacityAdvert,
  decodeAdvert,
  encodeAdvert,
  validateAdvert,
} from '../../../src/protocol/advert/codec.ts'
import { PEER_A, PEER_B } from '../fixtures.ts'

const NOW = 1_800_000_000_000

function advert(overrides: Partial<CapacityAdvert> = {}): CapacityAdvert {
  return {
    v: 1,
    mesh: 'default',
    peerId: PEER_A,
    seq: 42,
    sentAtMs: NOW - 100,
    version: '0.1.0',
    cpus: 16,
    load1: 1.25,
    memoryTotalMB: 128_000,
    memoryFreeMB: 100_000,
    gpus: [
      {
        index: 0,
        uuid: 'GPU-abc',
        name: 'NVIDIA H100',
        memoryTotalMB: 81_559,
        memoryFreeMB: 80_000,
        utilizationPct: 3.5,
        free: true,
      },
      { index: 1, name: 'NVIDIA GeForce RTX 4090', free: false },
    ],
    sched: {
      slots: 16,
      freeSlots: 4,
      memoryMB: 128_000,
      freeMemoryMB: 90_000,
      gpus: 2,
      freeGpus: 1,
      ready: [{ resources: { cpu: 1, gpu: 0, memoryMB: 512 }, count: 120 }],
      running: 12,
      meanTaskMs: 812.5,
    },
    ...overrides,
  }
}

const ctx: AdvertContext = { mesh: 'default', from: PEER_A, now: NOW, maxAgeMs: 60_000 }

/** An advert as it would be on the wire, edited. */
function wire(edit: (w: Record<string, unknown>) => void): Uint8Array {
  const { v: _v, ...rest } = advert()
  const w: Record<string, unknown> = { v: 1, t: 'advert', ...structuredClone(rest) }
  edit(w)
  return encode(w)
}

describe('advert codec', () => {
  it('round-trips', () => {
    const a = advert()
    expect(decodeAdvert(encodeAdvert(a))).toEqual(a)
    const minimal = advert({ gpus: [], sched: { ...a.sched, ready: [] } })
    expect(decodeAdvert(encodeAdvert(minimal))).toEqual(minimal)
  })

  it('accepts a valid advert', () => {
    const result = validateAdvert(encodeAdvert(advert()), { ...ctx, lastSeq: 41 })
    expect(result).toEqual({ ok: true, advert: advert() })
  })

  it('rejects malformed adverts with a reason and a detail naming the field', () => {
    const cases: Array<[Uint8Array, RegExp]> = [
      [encodeAdvert(advert()).subarray(0, 50), /malformed CBOR/],
      [wire((w) => (w.v = 2)), /capacity\.v/],
      [wire((w) => (w.t = 'capacity')), /capacity\.t/],
      [wire((w) => (w.seq = -1)), /capacity\.advert\.seq/],
      [wire((w) => (w.load1 = -0.5)), /capacity\.advert\.load1/],
      [wire((w) => (w.cpus = '16')), /capacity\.advert\.cpus/],
      [wire((w) => (w.memoryFreeMB = 1.5)), /capacity\.advert\.memoryFreeMB/],
      [wire((w) => (w.mesh = '')), /capacity\.advert\.mesh/],
      [wire((w) => (w.version = 'v'.repeat(65))), /capacity\.advert\.version/],
      [wire((w) => (w.gpus = [{ index: 0, name: 'x' }])), /capacity\.advert\.gpus\[0\]\.free: missing/],
      [
        wire((w) => (w.gpus = Array.from({ length: 65 }, (_, i) => ({ index: i, name: 'g', free: true })))),
        /capacity\.advert\.gpus: more than 64/,
      ],
      [
        wire((w) => ((w.sched as Record<string, unknown>).freeSlots = -1)),
        /capacity\.advert\.sched\.freeSlots/,
      ],
      [
        wire((w) => ((w.sched as Record<string, unknown>).extra = 1)),
        /capacity\.advert\.sched: unexpected field/,
      ],
      [wire((w) => (w.peerId = undefined)), /malformed CBOR/],
      [wire((w) => delete w.sched), /capacity\.advert\.sched: missing/],
    ]
    for (const [bytes, detail] of cases) {
      const result = validateAdvert(bytes, ctx)
      expect(result.ok).toBe(false)
      if (!result.ok) {
        expect(result.reason).toBe('malformed')
        expect(result.detail).toMatch(detail)
      }
    }
  })

  it('decodeAdvert throws RemoteProtocolError', () => {
    expect(() => decodeAdvert(wire((w) => (w.seq = 'x')))).toThrow(RemoteProtocolError)
  })

  it('rejects oversized adverts before decoding', () => {
    const big = new Uint8Array(ADVERT_MAX_BYTES + 1)
    expect(validateAdvert(big, ctx)).toEqual({ ok: false, reason: 'oversized' })
    expect(() =>
      encodeAdvert(
        advert({
          version: 'x'.repeat(64),
          gpus: Array.from({ length: 64 }, (_, i) => ({ index: i, name: 'n'.repeat(256), free: true })),
        }),
      ),
    ).toThrow(LocalProtocolError)
  })

  it('rejects adverts from another mesh', () => {
    expect(validateAdvert(encodeAdvert(advert({ mesh: 'other' })), ctx)).toEqual({
      ok: false,
      reason: 'foreign-mesh',
    })
  })

  it('rejects adverts about a peer other than the signer', () => {
    expect(validateAdvert(encodeAdvert(advert()), { ...ctx, from: PEER_B })).toEqual({
      ok: false,
      reason: 'wrong-signer',
    })
  })

  it('rejects stale adverts, too old or too far in the future', () => {
    expect(validateAdvert(encodeAdvert(advert({ sentAtMs: NOW - 60_001 })), ctx)).toEqual({
      ok: false,
      reason: 'stale',
    })
    expect(validateAdvert(encodeAdvert(advert({ sentAtMs: NOW + 60_001 })), ctx)).toEqual({
      ok: false,
      reason: 'stale',
    })
    expect(validateAdvert(encodeAdvert(advert({ sentAtMs: NOW + 59_000 })), ctx).ok).toBe(true)
  })

  it('rejects replayed adverts (seq not above the last accepted)', () => {
    const bytes = encodeAdvert(advert({ seq: 42 }))
    expect(validateAdvert(bytes, { ...ctx, lastSeq: 42 })).toEqual({ ok: false, reason: 'replayed' })
    expect(validateAdvert(bytes, { ...ctx, lastSeq: 100 })).toEqual({ ok: false, reason: 'replayed' })
    expect(validateAdvert(bytes, { ...ctx, lastSeq: 41 }).ok).toBe(true)
    expect(validateAdvert(bytes, ctx).ok).toBe(true)
  })
})
