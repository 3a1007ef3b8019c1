/**
 * The scalar fast path against node:v8 itself: the same bytes for what v8 writes canonically, the
 * same value back for every scalar, and for any other bytes either the value v8.deserialize reads
 * or a hand-back to it (NOT_SCALAR), never a different answer.
 */
import v8 from 'node:v8'
import { describe, expect, test } from 'vitest'
import { decodeScalar, encodeScalar, NOT_SCALAR } from '../../src/domain/value-scalars.ts'
import { decodeValue, encodeValue } from '../../src/domain/values.ts'

let seed = 12345
function rand(): number {
  seed = (Math.imul(seed, 1103515245) + 12345) >>> 0
  return seed / 2 ** 32
}

function scalars(): unknown[] {
  const out: unknown[] = [
    0,
    -0,
    1,
    -1,
    63,
    64,
    -64,
    -65,
    127,
    128,
    2 ** 14,
    2 ** 21,
    2 ** 28,
    2 ** 30 - 1,
    2 ** 30,
  ]
  out.push(2 ** 31 - 1, -(2 ** 31), 2 ** 31, -(2 ** 31) - 1, 2 ** 53, 1.5, -2.25, 0.1, Number.MIN_VALUE)
  out.push(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    Number.MAX_VALUE,
    true,
    false,
    null,
  )
  out.push(
    '',
    'a',
    'abc',
    'é',
    'ÿ\u0000\u0001',
    'x'.repeat(127),
    'x'.repeat(128),
    'x'.repeat(256),
    'x'.repeat(257),
  )
  out.push('ab\u1234', '\u0100', '😀', 'naïve café')
  for (let i = 0; i < 2000; i++) {
    const r = rand()
    if (r < 0.3) out.push(Math.floor((rand() - 0.5) * 2 ** (1 + Math.floor(rand() * 34))))
    else if (r < 0.5) out.push((rand() - 0.5) * 10 ** Math.floor(rand() * 20))
    else {
      const n = Math.floor(rand() * 300)
      let s = ''
      for (let k = 0; k < n; k++) s += String.fromCharCode(Math.floor(rand() * (rand() < 0.9 ? 256 : 0x3000)))
      out.push(s)
    }
  }
  return out
}

describe('value scalars', () => {
  test('every scalar round-trips to the same value, and v8 reads our bytes as that value', () => {
    for (const v of scalars()) {
      const ours = encodeScalar(v)
      if (ours === undefined) {
        expect(
          typeof v === 'string' && (v.length > 256 || [...v].some((c) => c.charCodeAt(0) > 0xff)),
          String(v),
        ).toBe(true)
        continue
      }
      expect(Object.is(v8.deserialize(ours), v), String(v)).toBe(true)
      expect(Object.is(decodeScalar(ours), v), String(v)).toBe(true)
      expect(Object.is(decodeValue(encodeValue(v)), v)).toBe(true)
    }
  })

  test("the bytes are v8's own for values v8 writes as int32, double, boolean, null or a one-byte string", () => {
    for (const v of scalars()) {
      const ours = encodeScalar(v)
      if (ours !== undefined) expect(Buffer.from(ours).equals(v8.serialize(v)), String(v)).toBe(true)
    }
  })

  test("v8's bytes of any scalar decode to the same value, or are handed back to v8", () => {
    for (const v of [...scalars(), 10n, undefined]) {
      const bytes = v8.serialize(v)
      const got = decodeScalar(bytes)
      if (got !== NOT_SCALAR) expect(Object.is(got, v), String(v)).toBe(true)
    }
  })

  test('cut, extended and flipped bytes: the value v8 reads, or a hand-back; never another value', () => {
    let handedBack = 0
    for (const v of scalars().slice(0, 600)) {
      const good = encodeScalar(v) ?? new Uint8Array(v8.serialize(v))
      const variants: Uint8Array[] = []
      for (let cut = 0; cut < Math.min(good.length, 12); cut++) variants.push(good.subarray(0, cut))
      variants.push(Uint8Array.of(...good, 0), Uint8Array.of(...good, 0x49))
      for (let k = 0; k < 6; k++) {
        const b = Uint8Array.from(good)
        b[Math.floor(rand() * b.length)] ^= 1 << Math.floor(rand() * 8)
        variants.push(b)
      }
      for (const b of variants) {
        const got = decodeScalar(b)
        if (got === NOT_SCALAR) {
          handedBack++
          continue
        }
        expect(Object.is(got, v8.deserialize(b)), `${Buffer.from(b).toString('hex')}`).toBe(true)
      }
    }
    expect(handedBack).toBeGreaterThan(0)
  })

  test('non-canonical varints and trailing bytes are left to v8', () => {
    const [ff, version] = v8.serialize(null)
    expect(decodeScalar(Uint8Array.of(ff, version, 0x49, 0x80, 0x00))).toBe(NOT_SCALAR)
    expect(decodeScalar(Uint8Array.of(ff, version, 0x49, 0x02, 0x00))).toBe(NOT_SCALAR)
    expect(decodeScalar(Uint8Array.of(ff, version, 0x22, 0x01, 0x61, 0x62))).toBe(NOT_SCALAR)
    expect(decodeScalar(Uint8Array.of(ff, version + 1, 0x49, 0x02))).toBe(NOT_SCALAR)
    expect(decodeScalar(Uint8Array.of(ff, version, 0x49, 0x02))).toBe(1)
  })
})
