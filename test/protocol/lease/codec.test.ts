import { describe, expect, it } from 'vitest'
import {
  LEASE_MAX_MESSAGE_BYTES,
  leaseReplyCodec,
  leaseRequestCodec,
} from '../../../src/protocol/lease/codec.ts'
import { expectRejections, rejected } from '../codec-helpers.ts'
import { at, wireObject } from '../fixtures.ts'

const keys = [
  { job: 'job-1', index: 0, attempt: 1, copy: 1 },
  { job: 'job-2', index: 9, attempt: 4, copy: 17 },
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
      // The copy each entry names: required, an integer in [1, 17] (the owner's hand-off plus 16 links).
      [(w) => delete at(w, 'holdings.0').copy, /holdings\[0\]\.copy: missing/],
      [(w) => (at(w, 'holdings.0').copy = 0), /holdings\[0\]\.copy: expected an integer in \[1, 17\]/],
      [(w) => (at(w, 'holdings.0').copy = 18), /holdings\[0\]\.copy: expected at most 17/],
      [(w) => (at(w, 'holdings.0').copy = -1), /holdings\[0\]\.copy: expected a non-negative integer/],
      [(w) => (at(w, 'holdings.0').copy = 1.5), /holdings\[0\]\.copy: expected an integer/],
      [(w) => (at(w, 'holdings.0').copy = '1'), /holdings\[0\]\.copy: expected an integer/],
      [(w) => (at(w, 'holdings.0').copy = 2 ** 53), /holdings\[0\]\.copy: expected an integer/],
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
        [(w) => delete at(w, 'drop.1').copy, /drop\[1\]\.copy: missing/],
        [(w) => (at(w, 'drop.1').copy = 0), /drop\[1\]\.copy: expected an integer in \[1, 17\]/],
        [(w) => (at(w, 'drop.1').copy = 99), /drop\[1\]\.copy: expected at most 17/],
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
      copy: 1,
    }))
    expect(() => leaseRequestCodec.encode({ t: 'lease', holdings })).toThrow(/exceeds 4194304/)
    expect(() => leaseRequestCodec.decode(new Uint8Array(LEASE_MAX_MESSAGE_BYTES + 1))).toThrow(/exceeds/)
  })
})
