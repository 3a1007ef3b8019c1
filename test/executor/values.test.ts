import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { decodeOwned, decodeValue, encodeValue } from '../../src/executor/values.ts'

function roundTrip(v: unknown): unknown {
  return decodeValue(encodeValue(v))
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

describe('encodeValue / decodeValue', () => {
  test('structured values survive, nested, with their types', () => {
    const value = {
      json: { a: [1, 'two', null, true, { b: -0.5 }] },
      big: -(2n ** 80n),
      date: new Date(0),
      re: /x+/m,
      map: new Map<unknown, unknown>([[{ k: 1 }, new Set([1n])]]),
      typed: [
        new Int16Array([-1, 2]),
        new Uint8ClampedArray([300]),
        new BigInt64Array([5n]),
        new DataView(new ArrayBuffer(2)),
      ],
      buffer: new ArrayBuffer(4),
      error: new RangeError('kept'),
    }
    const back = roundTrip(value) as typeof value
    expect(back).toEqual(value)
    expect(back.typed[0]).toBeInstanceOf(Int16Array)
    expect(back.typed[2]).toBeInstanceOf(BigInt64Array)
    expect(back.error).toBeInstanceOf(RangeError)
  })

  test('cycles and shared references survive', () => {
    const shared = { n: 1 }
    const a: Record<string, unknown> = { left: shared, right: shared }
    a.self = a
    const back = roundTrip(a) as Record<string, unknown>
    expect(back.self).toBe(back)
    expect(back.left).toBe(back.right)
  })

  test('undefined is zero bytes, and zero bytes are undefined', () => {
    expect(encodeValue(undefined).byteLength).toBe(0)
    expect(decodeValue(new Uint8Array(0))).toBeUndefined()
    expect(roundTrip(null)).toBeNull()
  })

  test('decoded typed arrays do not alias the bytes they came from', () => {
    const bytes = encodeValue({ u: new Uint8Array([1, 2, 3]) })
    const copy = new Uint8Array(bytes)
    const back = decodeValue(bytes) as { u: Uint8Array }
    back.u[0] = 99
    expect(bytes).toEqual(copy)
  })

  test("a value that is one task's slice of a batch decodes without its neighbours' bytes (decodeOwned)", () => {
    const mine = encodeValue(new Uint8Array([1, 2, 3]))
    const theirs = encodeValue('secret of another job')
    const batch = new Uint8Array(mine.byteLength + theirs.byteLength)
    batch.set(mine)
    batch.set(theirs, mine.byteLength)
    const got = decodeOwned(batch.subarray(0, mine.byteLength)) as Uint8Array
    expect([...got]).toEqual([1, 2, 3])
    // Over a copy of its own bytes at most, never over the batch.
    expect(got.buffer.byteLength).toBeLessThanOrEqual(mine.byteLength)
    got[0] = 0
    expect(decodeOwned(batch.subarray(mine.byteLength))).toBe('secret of another job')
  })

  test('JSON-like values round trip (property)', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        expect(roundTrip(v)).toEqual(v)
      }),
      { numRuns: 200 },
    )
  })

  test('functions, symbols and class instances are refused with GN_UNSERIALIZABLE, naming where', () => {
    class Point {
      #secret = 1
      x = 2
      get secret(): number {
        return this.#secret
      }
    }
    const cases: Array<[unknown, RegExp]> = [
      [() => 1, /cannot encode a function at value/],
      [{ a: [1, { fn: function score() {} }] }, /a function \(score\) at value\.a\[1\]\.fn/],
      [Symbol('s'), /a symbol \(Symbol\(s\)\) at value/],
      [{ p: new Point() }, /an instance of Point at value\.p/],
      [new Map([['k', new WeakMap()]]), /an instance of WeakMap at value\.get\("k"\)/],
      [[Promise.resolve()], /an instance of Promise at value\[0\]/],
      [{ 'odd key': Object.create({ inherited: 1 }) }, /custom prototype at value\["odd key"\]/],
    ]
    for (const [v, message] of cases) {
      let caught: unknown
      try {
        encodeValue(v)
      } catch (err) {
        caught = err
      }
      expect(caught, String(message)).toMatchObject({
        code: 'GN_UNSERIALIZABLE',
        name: 'UnserializableError',
      })
      expect((caught as Error).message).toMatch(message)
    }
  })

  test('too deep a value is refused, not a crash', () => {
    let deep: unknown = 1
    for (let i = 0; i < 200_000; i++) deep = [deep]
    expect(codeOf(() => encodeValue(deep))).toBe('GN_UNSERIALIZABLE')
  })

  test('garbage bytes throw GN_BAD_VALUE (property), never anything else', () => {
    const valid = encodeValue({ a: [1, 'x', new Map([[1, new Uint8Array(8)]])], d: new Date(), n: 5n })
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), fc.nat(), fc.nat(), (random, cut, flip) => {
        for (const bytes of [random, mutate(valid, cut, flip)]) {
          try {
            decodeValue(bytes)
          } catch (err) {
            expect((err as { code?: string }).code).toBe('GN_BAD_VALUE')
          }
        }
      }),
      { numRuns: 2000 },
    )
    expect(codeOf(() => decodeValue(new Uint8Array([0xff, 0x0f, 0x6f])))).toBe('GN_BAD_VALUE')
    expect(codeOf(() => decodeValue('nope' as unknown as Uint8Array))).toBe('GN_BAD_VALUE')
  })
})

function mutate(bytes: Uint8Array, cut: number, flip: number): Uint8Array {
  const out = bytes.slice(0, 1 + (cut % bytes.length))
  out[flip % out.length] ^= 1 + (flip % 255)
  return out
}
