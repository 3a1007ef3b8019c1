import { describe, expect, it } from 'vitest'
import {
  LEASE_MAX_MESSAGE_BYTES,
  leaseReplyCodec,
  leaseRequestCodec,
} from '../../../src/protocol/lease/codec.ts'
import { expectRejections, rejected } from '../codec-helpers.ts'
import { at, wireObject } from '../fixtures.ts'

const keys = [
  { job: 'job-1', index: 0, attempt: 1 },
  { job: 'job-2', index: 9, attempt: 4 },
]

describe('lease codec', () => {
  it('round-trips', () => {
    for (const req of [
      { t: 'lease' as const, holdings: keys },
      { t: 'lease' as const, holdings: [] },
      { t: 'cancel' as const, job: 'job-1' },
    ]) {
      expect(leaseRequestCodec.decode(leaseRequestCodec.encode(req))).toEqual(req)
    }
    for (const rep of [
      { t: 'lease-answer' as const, drop: keys, cancelledJobs: ['job-3'] },
      { t: 'cancel-ack' as const },
    ]) {
      expect(leaseReplyCodec.decode(leaseReplyCodec.encode(rep))).toEqual(rep)
    }
  })

  it('rejects malformed leases and answers', () => {
    expectRejections(leaseRequestCodec.decode, wireObject({ t: 'lease', holdings: keys }), [
      [(w) => (at(w, 'holdings.1').attempt = 1.5), /lease\.lease\.holdings\[1\]\.attempt/],
      [
        (w) => (at(w, 'holdings.0').job = ''),
        /lease\.lease\.holdings\[0\]\.job: expected a non-empty string/,
      ],
      [(w) => (at(w, 'holdings.0').extra = 1), /holdings\[0\]: unexpected field/],
      [(w) => (w.holdings = 'all'), /lease\.lease\.holdings: expected an array/],
      [(w) => (w.t = 'lease-answer'), /lease\.t: unknown message type/],
    ])
    expectRejections(leaseRequestCodec.decode, wireObject({ t: 'cancel', job: 'job-1' }), [
      [(w) => (w.job = 'x'.repeat(129)), /lease\.cancel\.job: string longer than 128/],
      [(w) => (w.job = ['job-1']), /lease\.cancel\.job: expected a string/],
    ])
    expectRejections(
      leaseReplyCodec.decode,
      wireObject({ t: 'lease-answer', drop: keys, cancelledJobs: [] }),
      [
        [(w) => (w.cancelledJobs = [1]), /lease\.lease-answer\.cancelledJobs\[0\]/],
        [(w) => (w.cancelledJobs = Array.from({ length: 4097 }, () => 'j')), /cancelledJobs: more than 4096/],
        [(w) => delete w.drop, /lease\.lease-answer\.drop: missing/],
      ],
    )
    expect(rejected(leaseReplyCodec.decode, { v: 1, t: 'cancel-ack', ok: true })).toMatch(
      /cancel-ack: unexpected field/,
    )
  })

  it('caps the message at 4 MiB', () => {
    const holdings = Array.from({ length: 32_000 }, (_, i) => ({
      job: 'j'.repeat(128),
      index: i,
      attempt: 1,
    }))
    expect(() => leaseRequestCodec.encode({ t: 'lease', holdings })).toThrow(/exceeds 4194304/)
    expect(() => leaseRequestCodec.decode(new Uint8Array(LEASE_MAX_MESSAGE_BYTES + 1))).toThrow(/exceeds/)
  })
})
