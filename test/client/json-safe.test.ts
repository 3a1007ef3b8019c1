import { describe, expect, it } from 'vitest'
import { toJsonSafe } from '../../src/client/json-safe.ts'
import { decodeValue, encodeValue } from '../../src/executor/values.ts'

describe('toJsonSafe', () => {
  it('leaves JSON values as they are', () => {
    const v = { a: [1, 'two', true, null, { b: -0.5 }], s: '' }
    expect(toJsonSafe(v)).toEqual(v)
  })

  it('gives every value JSON cannot hold its documented form', () => {
    const value = {
      big: 2n ** 70n,
      negBig: -5n,
      date: new Date(Date.UTC(2026, 10, 3, 4, 5, 6)),
      badDate: new Date(Number.NaN),
      map: new Map<unknown, unknown>([
        ['a', 1],
        [2n, new Set([1])],
      ]),
      set: new Set(['x', 'y']),
      bytes: new Uint8Array([0, 1, 255]),
      buffer: new Uint8Array([104, 105]).buffer,
      floats: new Float32Array([0.5, Number.POSITIVE_INFINITY]),
      bigs: new BigInt64Array([1n, -2n]),
      nan: Number.NaN,
      inf: Number.NEGATIVE_INFINITY,
      re: /a+b/gi,
      err: new RangeError('too far'),
      boxed: Object(7),
      gone: undefined,
      holes: [undefined, 1],
    }
    expect(toJsonSafe(value)).toEqual({
      big: { $bigint: '1180591620717411303424' },
      negBig: { $bigint: '-5' },
      date: { $date: '2026-11-03T04:05:06.000Z' },
      badDate: { $date: null },
      map: {
        $map: [
          ['a', 1],
          [{ $bigint: '2' }, { $set: [1] }],
        ],
      },
      set: { $set: ['x', 'y'] },
      bytes: { $bytes: 'AAH/' },
      buffer: { $bytes: 'aGk=' },
      floats: { $typed: 'Float32Array', values: [0.5, { $number: 'Infinity' }] },
      bigs: { $typed: 'BigInt64Array', values: ['1', '-2'] },
      nan: { $number: 'NaN' },
      inf: { $number: '-Infinity' },
      re: { $regexp: '/a+b/gi' },
      err: { $error: { name: 'RangeError', message: 'too far' } },
      boxed: 7,
      holes: [null, 1],
    })
  })

  it('prints a typed-array view of part of a buffer, not the whole buffer', () => {
    const whole = new Uint8Array([1, 2, 3, 4])
    expect(toJsonSafe(whole.subarray(1, 3))).toEqual({ $bytes: Buffer.from([2, 3]).toString('base64') })
  })

  it('marks cycles instead of looping, and repeats shared (acyclic) references in full', () => {
    const shared = { n: 1 }
    const loop: Record<string, unknown> = { shared, again: shared }
    loop.self = loop
    expect(toJsonSafe(loop)).toEqual({ shared: { n: 1 }, again: { n: 1 }, self: { $circular: true } })
  })

  it('turns undefined at the top into null, so every result is one JSON line', () => {
    expect(JSON.stringify(toJsonSafe(undefined))).toBe('null')
  })

  it('survives the wire: what a task returns is printable after encode/decode', () => {
    const v = decodeValue(encodeValue({ when: new Date(0), n: 10n }))
    expect(JSON.stringify(toJsonSafe(v))).toBe(
      '{"when":{"$date":"1970-01-01T00:00:00.000Z"},"n":{"$bigint":"10"}}',
    )
  })
})
