/**
 * CBOR encoding (RFC 8949) of gridnode's messages, written for their shape:
 * plain objects with a few fixed field names, arrays of thousands of small
 * records (a lease's holdings, a batch's tasks, a results message), strings,
 * safe integers, byte strings. Decoding stays with cborg (message.ts), whose
 * strict decoder every message must pass on the receiving side.
 *
 * Why not cborg's encoder: for each map it builds a token per key, encodes
 * the keys to sort them (deterministic order), and checks for cycles with a
 * fresh object per level. A lease of 800 holdings took 1.8 ms to encode
 * alone and 7-9 ms of CPU inside a busy daemon (allocation, GC, page
 * faults), its largest single cost on a thief: see README, Performance.
 *
 * What it writes: integers in their shortest form (the receiver's strict
 * mode requires it); other numbers as float32 when that is exact, float64
 * otherwise; strings as UTF-8; Uint8Array (Buffer too) as a byte string;
 * arrays; plain objects as maps in their own key order (gridnode never
 * signs or hashes a message's encoding, and cborg decodes any order),
 * leaving out undefined properties (cborg's `ignoreUndefinedProperties`);
 * null, true, false. Anything else (Map, Date, bigint, a class instance, a
 * cycle, nesting past MAX_DEPTH) throws a TypeError: a bug on our side.
 */

const MAX_DEPTH = 64
/** The scratch buffer is kept up to this size between messages; larger ones get a buffer of their own. */
const KEEP_BYTES = 1 << 20
const KEY_CACHE = 512

const MAJOR_UINT = 0x00
const MAJOR_NEGINT = 0x20
const MAJOR_BYTES = 0x40
const MAJOR_STRING = 0x60
const MAJOR_ARRAY = 0x80
const MAJOR_MAP = 0xa0

let buf = new Uint8Array(64 * 1024)
let view = new DataView(buf.buffer)
let pos = 0
/** Map keys as written (header and UTF-8): a message names the same few fields thousands of times. */
const keys = new Map<string, Uint8Array>()
const utf8 = new TextEncoder()
/**
 * Long strings already written in this message, by where they start and end: a lease names the
 * same job id and peer ID in each of its holdings. Copied within the buffer instead of re-encoded.
 */
const written = new Map<string, number>()
const REUSE_MIN = 16

export function encodeCbor(value: unknown): Uint8Array {
  pos = 0
  written.clear()
  try {
    write(value, 0)
    return buf.slice(0, pos)
  } finally {
    if (buf.byteLength > KEEP_BYTES) {
      buf = new Uint8Array(64 * 1024)
      view = new DataView(buf.buffer)
    }
  }
}

function ensure(n: number): void {
  if (pos + n <= buf.byteLength) return
  let size = buf.byteLength * 2
  while (size < pos + n) size *= 2
  const next = new Uint8Array(size)
  next.set(buf.subarray(0, pos))
  buf = next
  view = new DataView(buf.buffer)
}

function head(major: number, n: number): void {
  ensure(9)
  if (n < 24) {
    buf[pos++] = major | n
  } else if (n < 0x100) {
    buf[pos++] = major | 24
    buf[pos++] = n
  } else if (n < 0x10000) {
    buf[pos++] = major | 25
    view.setUint16(pos, n)
    pos += 2
  } else if (n < 0x100000000) {
    buf[pos++] = major | 26
    view.setUint32(pos, n)
    pos += 4
  } else {
    buf[pos++] = major | 27
    view.setUint32(pos, Math.floor(n / 0x100000000))
    view.setUint32(pos + 4, n >>> 0)
    pos += 8
  }
}

function number(n: number): void {
  if (Number.isSafeInteger(n)) {
    if (n >= 0) head(MAJOR_UINT, n)
    else head(MAJOR_NEGINT, -1 - n)
    return
  }
  ensure(9)
  if (Math.fround(n) === n || Number.isNaN(n)) {
    buf[pos++] = 0xfa
    view.setFloat32(pos, n)
    pos += 4
  } else {
    buf[pos++] = 0xfb
    view.setFloat64(pos, n)
    pos += 8
  }
}

function string(s: string): void {
  const n = s.length
  if (n >= REUSE_MIN) {
    const at = written.get(s)
    if (at !== undefined) {
      // The string's header and bytes as written at `at` (both lengths follow from its first byte).
      const end = at + stringSize(at)
      ensure(end - at)
      buf.copyWithin(pos, at, end)
      pos += end - at
      return
    }
    written.set(s, pos)
  }
  // ASCII (field names, ids, peer IDs, base58 and base64 text): one byte per character, known length.
  if (n < 0x100) {
    ensure(n + 2)
    const at = pos
    head(MAJOR_STRING, n)
    let p = pos
    for (let i = 0; i < n; i++) {
      const c = s.charCodeAt(i)
      if (c >= 0x80) {
        pos = at
        return utf8String(s)
      }
      buf[p++] = c
    }
    pos = p
    return
  }
  utf8String(s)
}

/** Bytes of the string item written at `at`, its header included. */
function stringSize(at: number): number {
  const info = buf[at] & 0x1f
  if (info < 24) return 1 + info
  if (info === 24) return 2 + buf[at + 1]
  if (info === 25) return 3 + view.getUint16(at + 1)
  return 5 + view.getUint32(at + 1)
}

function utf8String(s: string): void {
  const bytes = utf8.encode(s)
  head(MAJOR_STRING, bytes.byteLength)
  ensure(bytes.byteLength)
  buf.set(bytes, pos)
  pos += bytes.byteLength
}

function key(k: string): void {
  let bytes = keys.get(k)
  if (bytes === undefined) {
    const at = pos
    string(k)
    bytes = buf.slice(at, pos)
    if (keys.size < KEY_CACHE) keys.set(k, bytes)
    return
  }
  ensure(bytes.byteLength)
  buf.set(bytes, pos)
  pos += bytes.byteLength
}

function write(v: unknown, depth: number): void {
  switch (typeof v) {
    case 'string':
      return string(v)
    case 'number':
      return number(v)
    case 'boolean':
      ensure(1)
      buf[pos++] = v ? 0xf5 : 0xf4
      return
    case 'undefined':
      ensure(1)
      buf[pos++] = 0xf7
      return
    case 'object':
      break
    default:
      throw new TypeError(`cannot encode a ${typeof v} as CBOR`)
  }
  if (v === null) {
    ensure(1)
    buf[pos++] = 0xf6
    return
  }
  if (depth >= MAX_DEPTH) throw new TypeError(`cannot encode CBOR nested deeper than ${MAX_DEPTH}`)
  if (v instanceof Uint8Array) {
    head(MAJOR_BYTES, v.byteLength)
    ensure(v.byteLength)
    buf.set(v, pos)
    pos += v.byteLength
    return
  }
  if (Array.isArray(v)) {
    head(MAJOR_ARRAY, v.length)
    for (let i = 0; i < v.length; i++) write(v[i], depth + 1)
    return
  }
  const proto = Object.getPrototypeOf(v)
  if (proto !== Object.prototype && proto !== null) {
    throw new TypeError(`cannot encode a ${proto?.constructor?.name ?? 'non-plain object'} as CBOR`)
  }
  const o = v as Record<string, unknown>
  const names = Object.keys(o)
  let count = 0
  for (let i = 0; i < names.length; i++) if (o[names[i]] !== undefined) count++
  head(MAJOR_MAP, count)
  for (let i = 0; i < names.length; i++) {
    const value = o[names[i]]
    if (value === undefined) continue
    key(names[i])
    write(value, depth + 1)
  }
}
