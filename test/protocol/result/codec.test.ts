import { describe, expect, it } from 'vitest'
import {
  RESULT_MAX_MESSAGE_BYTES,
  resultReplyCodec,
  resultRequestCodec,
} from '../../../src/protocol/result/codec.ts'
import { MAX_VALUE_BYTES } from '../../../src/protocol/schemas.ts'
import { expectRejections, rejected } from '../codec-helpers.ts'
import { at, results, wireObject } from '../fixtures.ts'

describe('result codec', () => {
  it('round-trips every outcome and the ack', () => {
    const req = { t: 'results' as const, results: results() }
    expect(resultRequestCodec.decode(resultRequestCodec.encode(req))).toEqual(req)
    expect(resultRequestCodec.decode(resultRequestCodec.encode({ t: 'results', results: [] }))).toEqual({
      t: 'results',
      results: [],
    })
    const ack = { t: 'results-ack' as const, tasks: [{ job: 'job-1', index: 0, attempt: 1 }] }
    expect(resultReplyCodec.decode(resultReplyCodec.encode(ack))).toEqual(ack)
    const err = { t: 'error' as const, code: 'GN_DB', message: 'disk full' }
    expect(resultReplyCodec.decode(resultReplyCodec.encode(err))).toEqual(err)
  })

  it('validates outcomes by status', () => {
    const good = wireObject({ t: 'results', results: results() })
    expectRejections(resultRequestCodec.decode, good, [
      [
        (w) => (at(w, 'results.0.outcome').status = 'exploded'),
        /result\.results\.results\[0\]\.outcome\.status: expected one of/,
      ],
      [(w) => delete at(w, 'results.0.outcome').value, /results\[0\]\.outcome\.value: missing/],
      [(w) => (at(w, 'results.0.outcome').error = 'x'), /results\[0\]\.outcome: unexpected field "error"/],
      [(w) => (at(w, 'results.1.outcome').stack = 5), /results\[1\]\.outcome\.stack: expected a string/],
      [
        (w) => (at(w, 'results.3.outcome').stack = 'no stack on timeouts'),
        /results\[3\]\.outcome: unexpected field "stack"/,
      ],
      [(w) => delete at(w, 'results.4.outcome').error, /results\[4\]\.outcome\.error: missing/],
      [(w) => (at(w, 'results.5.outcome').durationMs = -1), /results\[5\]\.outcome\.durationMs/],
      [
        (w) => (at(w, 'results.2.outcome').error = 'e'.repeat(65 * 1024)),
        /results\[2\]\.outcome\.error: string longer/,
      ],
      [(w) => (at(w, 'results.0').outcome = 'ok'), /results\[0\]\.outcome: expected a map/],
      [(w) => (at(w, 'results.0').ranOn = 7), /results\[0\]\.ranOn/],
      [(w) => (at(w, 'results.0').index = -1), /results\[0\]\.index/],
      [(w) => (w.results = results()[0]), /result\.results\.results: expected an array/],
    ])
  })

  it('caps values, counts and the message size', () => {
    const value = new Uint8Array(MAX_VALUE_BYTES + 1)
    const w = wireObject({ t: 'results', results: results().slice(0, 1) })
    at(w, 'results.0.outcome').value = value
    expect(rejected(resultRequestCodec.decode, w)).toMatch(/outcome\.value: byte string longer than 8388608/)
    const many = wireObject({ t: 'results-ack', tasks: [] })
    many.tasks = Array.from({ length: 65_537 }, () => ({ job: 'j', index: 0, attempt: 0 }))
    expect(rejected(resultReplyCodec.decode, many)).toMatch(
      /result\.results-ack\.tasks: more than 65536 items/,
    )
    expect(() => resultRequestCodec.decode(new Uint8Array(RESULT_MAX_MESSAGE_BYTES + 1))).toThrow(/exceeds/)
  })
})
