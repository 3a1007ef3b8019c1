import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { runCommand } from '../../src/executor/command.ts'
import { MAX_DEPTH, scanValue } from '../../src/executor/value-scan.ts'
import { decodeValue, encodeValue } from '../../src/executor/values.ts'

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn()
  } catch (err) {
    return (err as { code?: string }).code
  }
  return undefined
}

/** 0xFF 0x0F, then a sparse array ('a') of length 2^32-2 with no elements: 15 bytes. */
const CRAFTED_SPARSE = new Uint8Array([
  0xff, 0x0f, 0x61, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0x40, 0x00, 0xfe, 0xff, 0xff, 0xff, 0x0f,
])
/** The same with a dense array ('A'). */
const CRAFTED_DENSE = new Uint8Array([
  0xff, 0x0f, 0x41, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0x24, 0x00, 0xfe, 0xff, 0xff, 0xff, 0x0f,
])

describe('scanValue: bounded v8 deserialization', () => {
  test('accepts everything encodeValue produces', () => {
    const shared = { n: 1 }
    const cyclic: Record<string, unknown> = { left: shared, right: shared }
    cyclic.self = cyclic
    const holey: number[] = [1]
    holey[2] = 3
    const sparse: number[] = []
    sparse[1000] = 7
    const values: unknown[] = [
      null,
      true,
      false,
      0,
      -1,
      2 ** 31,
      1.5,
      Number.NaN,
      'one byte',
      'two bytes é€ 😀',
      '',
      -(2n ** 80n),
      0n,
      5n,
      new Date(0),
      /x+/gim,
      new Map<unknown, unknown>([[{ k: 1 }, new Set([1n, 'a'])]]),
      [new Int16Array([-1, 2]), new Uint8ClampedArray([300]), new BigInt64Array([5n])],
      new DataView(new ArrayBuffer(2)),
      new Float64Array([1.5, 2.5]),
      Buffer.from('buffer'),
      new ArrayBuffer(4),
      new ArrayBuffer(4, { maxByteLength: 8 }),
      new RangeError('kept'),
      new Error('with cause', { cause: { why: [1] } }),
      Object.assign(new TypeError('t'), { stack: undefined }),
      Object(1),
      Object('s'),
      Object(true),
      Object(false),
      Object(3n),
      Object.assign([1, 2], { extra: 'prop' }),
      holey,
      sparse,
      new Array(100),
      { 1: 'int key', a: 'str key', [-1]: 'neg' },
      Object.create(null),
      cyclic,
    ]
    values.forEach((v, i) => {
      const bytes = encodeValue(v)
      expect(() => scanValue(bytes), `value ${i}`).not.toThrow()
      expect(decodeValue(bytes), `value ${i}`).toEqual(v)
    })
  })

  test('accepts the deepest value v8 can encode', () => {
    let deep: unknown = 1
    let bytes = encodeValue(deep)
    let depth = 0
    for (; depth < MAX_DEPTH; depth++) {
      const next = [deep]
      try {
        bytes = encodeValue(next)
      } catch {
        break
      }
      deep = next
    }
    expect(depth).toBeGreaterThan(1000)
    expect(depth).toBeLessThan(MAX_DEPTH)
    expect(() => scanValue(bytes)).not.toThrow()
  })

  test('accepts generated values (property)', () => {
    fc.assert(
      fc.property(
        fc.anything({
          withBigInt: true,
          withDate: true,
          withMap: true,
          withSet: true,
          withTypedArray: true,
          withSparseArray: true,
          withNullPrototype: true,
          withBoxedValues: true,
        }),
        (v) => {
          const bytes = encodeValue(v)
          if (bytes.byteLength > 0) scanValue(bytes)
        },
      ),
      { numRuns: 500 },
    )
  })

  test('the crafted 15-byte values are refused in microseconds, with GN_BAD_VALUE', () => {
    for (const crafted of [CRAFTED_SPARSE, CRAFTED_DENSE]) {
      expect(crafted.byteLength).toBe(15)
      const start = performance.now()
      expect(codeOf(() => decodeValue(crafted))).toBe('GN_BAD_VALUE')
      expect(performance.now() - start).toBeLessThan(50)
    }
  })

  test('refuses declared sizes beyond the bytes, unknown tags and too much depth', () => {
    const head = [0xff, 0x0f]
    const cases: Array<[string, number[]]> = [
      ['string longer than the bytes', [...head, 0x22, 0x7f, 0x61]],
      ['two-byte string', [...head, 0x63, 0x80, 0x80, 0x04]],
      ['ArrayBuffer', [...head, 0x42, 0xff, 0xff, 0xff, 0x0f]],
      ['typed array', [...head, 0x5c, 0x01, 0xff, 0xff, 0x03, 0x00]],
      ['BigInt digits', [...head, 0x5a, 0xff, 0xff, 0x03]],
      ['resizable ArrayBuffer maximum', [...head, 0x7e, 0x00, 0xff, 0xff, 0xff, 0x0f]],
      ['shared array buffer', [...head, 0x75, 0x00]],
      ['transfer', [...head, 0x74, 0x00]],
      ['wasm', [...head, 0x77, 0x00]],
      ['unknown tag', [...head, 0x01]],
      ['varint over 32 bits', [...head, 0x55, 0xff, 0xff, 0xff, 0xff, 0x7f]],
      ['truncated', [...head, 0x6f, 0x22, 0x01]],
      ['no header', [0x22, 0x01, 0x61]],
      ['other version', [0xff, 0x63, 0x30]],
      [
        'many sparse arrays',
        [
          ...head,
          0x41,
          0x02,
          0x61,
          0xff,
          0xff,
          0x03,
          0x40,
          0x00,
          0xff,
          0xff,
          0x03,
          0x61,
          0xff,
          0xff,
          0x03,
          0x40,
          0x00,
          0xff,
          0xff,
          0x03,
          0x24,
          0x00,
          0x02,
        ],
      ],
    ]
    for (const [name, bytes] of cases) {
      expect(
        codeOf(() => scanValue(new Uint8Array(bytes))),
        name,
      ).toBe('GN_BAD_VALUE')
    }
    const deep = [0xff, 0x0f, ...new Array(MAX_DEPTH + 2).fill(0x6f)]
    expect(codeOf(() => scanValue(new Uint8Array(deep)))).toBe('GN_BAD_VALUE')
  })

  test('a big sparse-array input never stalls a command task', async () => {
    const start = performance.now()
    const outcome = await runCommand({
      argv: ['echo', '{}'],
      env: {},
      stdoutMaxBytes: 0,
      input: CRAFTED_SPARSE,
      timeoutMs: 5000,
      gpus: [],
      gpuTask: false,
      scratchDir: `/tmp/gridnode-scan-test-${process.pid}`,
    })
    expect(outcome.status).toBe('rejected')
    expect(performance.now() - start).toBeLessThan(500)
  })

  test('a reference-amplified input is refused before it reaches the command line', async () => {
    // 1,000 references to one array of 1,000 numbers, nested twice: a million values as JSON.
    const inner = Array.from({ length: 1000 }, (_, i) => i)
    const mid = Array.from({ length: 1000 }, () => inner)
    const outer = Array.from({ length: 10 }, () => mid)
    const input = encodeValue(outer)
    expect(input.byteLength).toBeLessThan(100_000)
    const outcome = await runCommand({
      argv: ['echo', '{}'],
      env: {},
      stdoutMaxBytes: 0,
      input,
      timeoutMs: 5000,
      gpus: [],
      gpuTask: false,
      scratchDir: `/tmp/gridnode-scan-test2-${process.pid}`,
    })
    expect(outcome.status).toBe('rejected')
  })
})
