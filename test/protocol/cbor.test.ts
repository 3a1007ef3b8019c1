/**
 * gridnode's own CBOR encoder and strict decoder (src/protocol/cbor-*.ts)
 * against cborg with the strict options message.ts used before them: what
 * we write, cborg reads back the same (older peers decode with cborg); what
 * cborg accepts, we accept with the same value, and what it refuses, we
 * refuse, on generated values, their encodings cut, flipped and spliced,
 * and random bytes.
 */
import { decode as cborgDecode, encode as cborgEncode } from 'cborg'
import fc from 'fast-check'
import { describe, expect, it } from 'vitest'
import { CborError, decodeCbor, MAX_DEPTH } from '../../src/protocol/cbor-decode.ts'
import { encodeCbor } from '../../src/protocol/cbor-encode.ts'
import { cborValue, encodeAny, flipBits } from '../fuzz/gen.ts'

const STRICT = {
  strict: true,
  allowIndefinite: false,
  allowUndefined: false,
  allowBigInt: false,
  allowNaN: false,
  allowInfinity: false,
  rejectDuplicateMapKeys: true,
}

type Outcome = { ok: true; value: unknown } | { ok: false }

function ours(bytes: Uint8Array): Outcome {
  try {
    return { ok: true, value: decodeCbor(bytes) }
  } catch (err) {
    expect(err).toBeInstanceOf(CborError)
    return { ok: false }
  }
}

function theirs(bytes: Uint8Array): Outcome {
  try {
    return { ok: true, value: cborgDecode(bytes, STRICT) }
  } catch {
    return { ok: false }
  }
}

/** Values whose strings went through a malformed-UTF-8 replacement may differ in how many U+FFFD. */
function hasReplacement(v: unknown): boolean {
  if (typeof v === 'string') return v.includes('\uFFFD')
  if (Array.isArray(v)) return v.some(hasReplacement)
  if (v !== null && typeof v === 'object' && !(v instanceof Uint8Array))
    return Object.entries(v).some(([k, x]) => k.includes('\uFFFD') || hasReplacement(x))
  return false
}

function agree(bytes: Uint8Array): void {
  const a = ours(bytes)
  const b = theirs(bytes)
  expect(a.ok, `decoders disagree on ${Buffer.from(bytes).toString('hex').slice(0, 200)}`).toBe(b.ok)
  if (a.ok && b.ok && !hasReplacement(b.value)) expect(a.value).toEqual(b.value)
}

/** What gridnode messages hold: plain objects, arrays, strings, safe integers, finite numbers, bytes. */
const messageValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<unknown>(null, true, false, 0, -0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32),
    fc.constantFrom(Number.MAX_SAFE_INTEGER, Number.MIN_SAFE_INTEGER, 0.5, 1.1, -2.5e-300, 3.4e38, 1e300),
    fc.integer(),
    fc.maxSafeInteger(),
    fc.double({ noNaN: true, noDefaultInfinity: true }),
    fc.string({ maxLength: 300 }),
    fc.string({ unit: 'grapheme', maxLength: 20 }),
    fc.uint8Array({ maxLength: 300 }),
    fc.array(tie('value'), { maxLength: 5 }),
    fc.dictionary(fc.string({ maxLength: 12 }), tie('value'), { maxKeys: 5 }),
  ),
})).value

describe('encodeCbor', () => {
  it('writes what cborg (strict) and our decoder read back as the same value', () => {
    fc.assert(
      fc.property(messageValue, (v) => {
        const bytes = encodeCbor(v)
        const expected = cborgDecode(cborgEncode(v), STRICT)
        expect(cborgDecode(bytes, STRICT)).toEqual(expected)
        expect(decodeCbor(bytes)).toEqual(expected)
      }),
      { numRuns: 2000 },
    )
  })

  it('writes integers and lengths in their shortest form, as cborg does', () => {
    for (const n of [0, 23, 24, 255, 256, 65535, 65536, 2 ** 32 - 1, 2 ** 32, Number.MAX_SAFE_INTEGER])
      for (const v of [n, -n - 1, 'x'.repeat(Math.min(n, 70_000)), new Array(Math.min(n, 70_000)).fill(0)])
        expect(Buffer.from(encodeCbor(v)).equals(Buffer.from(cborgEncode(v)))).toBe(true)
  })

  it('leaves out undefined properties, keeps the object key order, reuses long strings byte for byte', () => {
    const id = 'a-long-job-identifier-0123456789'
    const v = { z: 1, a: undefined, m: [id, id, { id }], b: id }
    const bytes = encodeCbor(v)
    expect(decodeCbor(bytes)).toEqual({ z: 1, m: [id, id, { id }], b: id })
    expect(Object.keys(decodeCbor(bytes) as object)).toEqual(['z', 'm', 'b'])
    expect(cborgDecode(bytes, STRICT)).toEqual({ z: 1, m: [id, id, { id }], b: id })
  })

  it('grows past its scratch buffer and still encodes the next message right', () => {
    const big = { data: new Uint8Array(3 << 20).fill(7), s: 'é'.repeat(100_000) }
    const back = decodeCbor(encodeCbor(big)) as typeof big
    expect(Buffer.from(back.data).equals(Buffer.from(big.data))).toBe(true)
    expect(back.s).toBe(big.s)
    expect(decodeCbor(encodeCbor({ t: 'small' }))).toEqual({ t: 'small' })
  })

  it('refuses what gridnode never sends, with a TypeError', () => {
    const cyclic: Record<string, unknown> = {}
    cyclic.self = cyclic
    for (const v of [
      new Map(),
      new Date(0),
      1n,
      new Uint16Array(2),
      new (class X {})(),
      () => 1,
      Symbol('s'),
      cyclic,
    ])
      expect(() => encodeCbor(v)).toThrow(TypeError)
    // The encoder is usable after a refusal.
    expect(decodeCbor(encodeCbor([1, 'two']))).toEqual([1, 'two'])
  })
})

describe('decodeCbor', () => {
  it('agrees with cborg on any encodable value (maps with odd keys, bigints, NaN, undefined included)', () => {
    fc.assert(
      fc.property(cborValue, (v) => agree(encodeAny(v))),
      { numRuns: 3000 },
    )
  })

  it('agrees with cborg on encodings cut, bit-flipped, spliced and on random bytes', () => {
    const encoded = fc.oneof(messageValue, cborValue).map((v) => encodeAny(v))
    fc.assert(
      fc.property(
        fc.oneof(
          fc.tuple(encoded, fc.nat()).map(([b, n]) => b.subarray(0, n % (b.byteLength + 1))),
          fc
            .tuple(encoded, fc.array(fc.tuple(fc.nat(), fc.nat(7)), { minLength: 1, maxLength: 4 }))
            .map(([b, flips]) => flipBits(b, flips)),
          fc
            .tuple(encoded, encoded, fc.nat())
            .map(([a, b, n]) => Buffer.concat([a.subarray(0, n % (a.byteLength + 1)), b])),
          fc.uint8Array({ maxLength: 40 }),
          fc
            .array(
              fc.constantFrom(
                0x18,
                0x19,
                0x1a,
                0x1b,
                0x1f,
                0x5f,
                0x7f,
                0x9f,
                0xbf,
                0xf7,
                0xf8,
                0xff,
                0xc0,
                0xa1,
                0x81,
                0x61,
              ),
              { maxLength: 24 },
            )
            .map((b) => new Uint8Array(b)),
        ),
        (bytes) => agree(bytes),
      ),
      { numRuns: 20_000 },
    )
  })

  it('refuses each thing strict decoding refuses, saying what and where', () => {
    const cases: Array<[number[], RegExp]> = [
      [[], /no data/],
      [[0x18, 0x05], /more bytes than needed \(at byte 0\)/],
      [[0x19, 0x00, 0xff], /more bytes than needed/],
      [[0x1a, 0x00, 0x00, 0xff, 0xff], /more bytes than needed/],
      [[0x1b, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff], /more bytes than needed/],
      [[0x1b, 0x00, 0x20, 0, 0, 0, 0, 0, 0], /outside the safe range/],
      [[0x3b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], /outside the safe range/],
      [[0x58, 0x01, 0x00], /more bytes than needed/],
      [[0x9f, 0xff], /indefinite length/],
      [[0x5f, 0xff], /indefinite length/],
      [[0x1c], /reserved additional info 28/],
      [[0xf7], /undefined/],
      [[0xf9, 0x7e, 0x00], /NaN/],
      [[0xf9, 0x7c, 0x00], /Infinity/],
      [[0xfb, 0xff, 0xf0, 0, 0, 0, 0, 0, 0], /Infinity/],
      [[0xc0, 0x60], /tags/],
      [[0xf0], /simple value 16/],
      [[0xf8, 0x20], /simple value 24/],
      [[0xff], /unexpected break/],
      [[0x01, 0x02], /1 bytes after the value/],
      [[0xa2, 0x61, 0x61, 0x01, 0x61, 0x61, 0x02], /map key "a" twice \(at byte 4\)/],
      [[0xa1, 0x01, 0x02], /map key is not a text string/],
      [[0x82, 0x01], /2 bytes needed, 1 left/],
      [[0x81], /unexpected end of data|1 bytes needed/],
      [[0x7a, 0x7f, 0xff, 0xff, 0xff, 0x61], /2147483647 bytes needed, 1 left/],
      [[0x9b, 0x00, 0x1f, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff], /bytes needed/],
    ]
    for (const [bytes, message] of cases) {
      expect(() => decodeCbor(new Uint8Array(bytes)), Buffer.from(bytes).toString('hex')).toThrow(message)
      expect(theirs(new Uint8Array(bytes)).ok, Buffer.from(bytes).toString('hex')).toBe(false)
    }
  })

  it('reads the edges of the safe integer range and every float width', () => {
    expect(decodeCbor(cborgEncode(Number.MAX_SAFE_INTEGER))).toBe(Number.MAX_SAFE_INTEGER)
    expect(decodeCbor(cborgEncode(Number.MIN_SAFE_INTEGER))).toBe(Number.MIN_SAFE_INTEGER)
    expect(decodeCbor(new Uint8Array([0xf9, 0x3c, 0x00]))).toBe(1)
    expect(decodeCbor(new Uint8Array([0xf9, 0x00, 0x01]))).toBe(2 ** -24)
    expect(decodeCbor(new Uint8Array([0xf9, 0xc0, 0x00]))).toBe(-2)
    expect(decodeCbor(new Uint8Array([0xfa, 0x3f, 0xc0, 0x00, 0x00]))).toBe(1.5)
    expect(decodeCbor(encodeCbor(0.1))).toBe(0.1)
  })

  it('reserves nothing for declared lengths: arrays nested inside each other, each claiming the rest', () => {
    // 127 arrays, each declaring as many elements as bytes remain, then zeros: cborg refuses it
    // for running out of data; so must we, quickly and without reserving memory per declared slot.
    const size = 1 << 20
    const message = new Uint8Array(size)
    for (let i = 0; i < MAX_DEPTH - 1; i++) {
      message[i * 5] = 0x9a
      new DataView(message.buffer).setUint32(i * 5 + 1, size - (i + 1) * 5)
    }
    const heap = process.memoryUsage().heapUsed
    const t0 = performance.now()
    expect(() => decodeCbor(message)).toThrow(CborError)
    expect(performance.now() - t0).toBeLessThan(2000)
    expect(process.memoryUsage().heapUsed - heap).toBeLessThan(200 * 1024 * 1024)
    expect(theirs(message).ok).toBe(false)
  })

  it('drops a leading byte order mark from a string, as cborg does', () => {
    const bom = [0xef, 0xbb, 0xbf]
    agree(new Uint8Array([0x64, ...bom, 0x74]))
    expect(decodeCbor(new Uint8Array([0x64, ...bom, 0x74]))).toBe('t')
    // So `\uFEFFt` and `t` are one key twice, refused by both.
    agree(new Uint8Array([0xa2, 0x64, ...bom, 0x74, 0x01, 0x61, 0x74, 0x02]))
    expect(() => decodeCbor(new Uint8Array([0xa2, 0x64, ...bom, 0x74, 0x01, 0x61, 0x74, 0x02]))).toThrow(
      /twice/,
    )
    agree(new Uint8Array([0x63, ...bom]))
  })

  it('takes __proto__ as an own key, never as the prototype', () => {
    const v = decodeCbor(
      new Uint8Array([0xa1, 0x69, ...Buffer.from('__proto__'), 0xa1, 0x61, 0x78, 0x01]),
    ) as object
    expect(Object.getPrototypeOf(v)).toBe(Object.prototype)
    expect(Object.hasOwn(v, '__proto__')).toBe(true)
    expect(({} as Record<string, unknown>).x).toBeUndefined()
  })

  it('refuses nesting past MAX_DEPTH without running out of stack, and copies bytes out of the message', () => {
    const deep = new Uint8Array(100_000).fill(0x81)
    expect(() => decodeCbor(deep)).toThrow(new RegExp(`nested deeper than ${MAX_DEPTH}`))
    const ok = new Uint8Array([...new Uint8Array(MAX_DEPTH).fill(0x81), 0x01])
    expect(decodeCbor(ok)).toBeDefined()
    for (const message of [new Uint8Array([0x42, 1, 2]), Buffer.from([0x42, 1, 2])]) {
      const got = decodeCbor(message) as Uint8Array
      message[1] = 9
      expect([...got]).toEqual([1, 2])
      expect(got.constructor).toBe(Uint8Array)
    }
  })

  it('keeps cached map keys apart from keys with the same hash and from non-ASCII keys', () => {
    const keys = ['a', 'b', 'ab', 'ba', 'é', 'ü', 'key', 'kez', 'x'.repeat(16), 'x'.repeat(17)]
    for (let round = 0; round < 3; round++)
      for (const k of keys) expect(Object.keys(decodeCbor(encodeCbor({ [k]: 1 })) as object)).toEqual([k])
  })
})
