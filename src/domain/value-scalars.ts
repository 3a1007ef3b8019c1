/**
 * The fast path of the value codec (values.ts) for scalars: numbers, booleans, null and short
 * Latin-1 strings, written and read in node:v8's own format without a v8 Serializer or
 * Deserializer. Building one costs more than the value: on a map of no-ops, a fresh
 * DefaultSerializer per input and a DefaultDeserializer per result were a sixth of the client's
 * CPU.
 *
 * The bytes are v8's: `I` + zigzag varint for int32 (v8's Smi range on 64-bit Node, checked at
 * load), `N` + a little-endian double otherwise, `T` `F` `0`, and `"` + varint length + Latin-1
 * bytes, each after the header (0xFF, v8's format version of the running Node). decodeScalar
 * reads only exactly those shapes (canonical varints, nothing after the value) and returns
 * NOT_SCALAR for anything else, which then goes to v8.deserialize as before.
 */
import v8 from 'node:v8'

const VERSION_TAG = 0xff
const INT32 = 0x49 // 'I'
const DOUBLE = 0x4e // 'N'
const TRUE = 0x54 // 'T'
const FALSE = 0x46 // 'F'
const NULL = 0x30 // '0'
const ONE_BYTE_STRING = 0x22 // '"'

/** v8's format version byte, from the Node that runs this. */
const HEADER = v8.serialize(null)
const VERSION = HEADER[1]
/** Whether this Node writes integers up to 2^31 - 1 as int32 (32-bit Smis) or only up to 2^30 - 1. */
const SMI_MAX = v8.serialize(2 ** 30)[2] === INT32 ? 2 ** 31 - 1 : 2 ** 30 - 1
const SMI_MIN = -SMI_MAX - 1
/** Longer strings go to v8 (the copy loop is no faster than its). */
const MAX_FAST_STRING = 256

/** Returned by decodeScalar for bytes it does not read itself. */
export const NOT_SCALAR: unique symbol = Symbol('not a scalar')

/** v8's bytes for a number, boolean, null or short Latin-1 string; undefined for anything else. */
export function encodeScalar(v: unknown): Uint8Array | undefined {
  switch (typeof v) {
    case 'number':
      return Number.isInteger(v) && v >= SMI_MIN && v <= SMI_MAX && !Object.is(v, -0) ? int32(v) : double(v)
    case 'boolean':
      return Uint8Array.of(VERSION_TAG, VERSION, v ? TRUE : FALSE)
    case 'string':
      return latin1(v)
    case 'object':
      return v === null ? Uint8Array.of(VERSION_TAG, VERSION, NULL) : undefined
    default:
      return undefined
  }
}

function int32(v: number): Uint8Array {
  // Zigzag, then a little-endian base-128 varint (at most 5 bytes).
  let z = ((v << 1) ^ (v >> 31)) >>> 0
  const out = new Uint8Array(8)
  out[0] = VERSION_TAG
  out[1] = VERSION
  out[2] = INT32
  let at = 3
  while (z >= 0x80) {
    out[at++] = (z & 0x7f) | 0x80
    z >>>= 7
  }
  out[at++] = z
  return out.subarray(0, at)
}

function double(v: number): Uint8Array {
  const out = new Uint8Array(11)
  out[0] = VERSION_TAG
  out[1] = VERSION
  out[2] = DOUBLE
  new DataView(out.buffer).setFloat64(3, v, true)
  return out
}

function latin1(s: string): Uint8Array | undefined {
  const n = s.length
  if (n > MAX_FAST_STRING) return undefined
  const head = n < 0x80 ? 4 : 5
  const out = new Uint8Array(head + n)
  for (let i = 0; i < n; i++) {
    const c = s.charCodeAt(i)
    if (c > 0xff) return undefined
    out[head + i] = c
  }
  out[0] = VERSION_TAG
  out[1] = VERSION
  out[2] = ONE_BYTE_STRING
  if (n < 0x80) out[3] = n
  else {
    out[3] = (n & 0x7f) | 0x80
    out[4] = n >>> 7
  }
  return out
}

/** The value of v8's bytes for a scalar encodeScalar writes, or NOT_SCALAR. */
export function decodeScalar(b: Uint8Array): unknown {
  const n = b.byteLength
  if (n < 3 || b[0] !== VERSION_TAG || b[1] !== VERSION) return NOT_SCALAR
  switch (b[2]) {
    case INT32: {
      const z = varint(b, 3)
      if (z === undefined || z.end !== n) return NOT_SCALAR
      return (z.value >>> 1) ^ -(z.value & 1)
    }
    case DOUBLE:
      return n === 11 ? new DataView(b.buffer, b.byteOffset, n).getFloat64(3, true) : NOT_SCALAR
    case TRUE:
      return n === 3 ? true : NOT_SCALAR
    case FALSE:
      return n === 3 ? false : NOT_SCALAR
    case NULL:
      return n === 3 ? null : NOT_SCALAR
    case ONE_BYTE_STRING: {
      const len = varint(b, 3)
      if (len === undefined || len.value > MAX_FAST_STRING || len.end + len.value !== n) return NOT_SCALAR
      let s = ''
      for (let i = len.end; i < n; i++) s += String.fromCharCode(b[i])
      return s
    }
    default:
      return NOT_SCALAR
  }
}

/** A canonical varint of at most 5 bytes and 32 bits at `at`, or undefined. */
function varint(b: Uint8Array, at: number): { value: number; end: number } | undefined {
  let value = 0
  for (let i = 0; i < 5; i++) {
    if (at + i >= b.byteLength) return undefined
    const byte = b[at + i]
    if (i === 4 && byte > 0x0f) return undefined
    value = (value | ((byte & 0x7f) << (7 * i))) >>> 0
    if (byte < 0x80) {
      // Canonical only: no trailing zero groups (v8 never writes them).
      if (byte === 0 && i > 0) return undefined
      return { value, end: at + i + 1 }
    }
  }
  return undefined
}
