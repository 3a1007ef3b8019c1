/**
 * Strict CBOR decoding (RFC 8949) of what peers send: the subset gridnode's
 * messages use, with cborg's strict options (message.ts used them before
 * this decoder existed) as the definition of what is accepted:
 *
 * - integers, and every length, in their shortest form; none outside the
 *   safe integer range;
 * - text strings (UTF-8; a malformed sequence becomes U+FFFD, as in
 *   TextDecoder), byte strings (copied out of the message), arrays, maps
 *   with text keys only and no key twice (a `__proto__` key is an own
 *   property), false, true, null, floats of any width but not NaN or
 *   infinite;
 * - no indefinite lengths, no undefined, no tags, no other simple values,
 *   nothing after the one top-level item, no nesting deeper than MAX_DEPTH.
 *
 * Anything else throws CborError with the offset and what was wrong. A
 * declared length is checked against the bytes left before anything is
 * allocated for it, so a small message cannot make the decoder reserve
 * much. test/protocol/cbor.test.ts checks it against cborg on generated and
 * mutated inputs (same accept/reject, same values).
 *
 * Why not cborg: it builds a token object per item, then the values from the
 * tokens. A lease of 800 holdings took 1 ms to decode here, about a tenth of
 * an owner's CPU with four busy daemons (README, Performance).
 */

export class CborError extends Error {
  override name = 'CborError'
}

/** Deeper than any gridnode message (the deepest nests about 8 levels). */
export const MAX_DEPTH = 128

const EMPTY = new Uint8Array(0)
const EMPTY_VIEW = new DataView(EMPTY.buffer)
const EMPTY_TEXT = Buffer.alloc(0)

let data: Uint8Array = EMPTY
let view: DataView = EMPTY_VIEW
/** The same bytes as a Buffer (no copy), for Node's native string decoding. */
let text8: Buffer = EMPTY_TEXT
let pos = 0

export function decodeCbor(bytes: Uint8Array): unknown {
  data = bytes
  view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  text8 = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)
  pos = 0
  try {
    if (bytes.byteLength === 0) fail('no data')
    const value = item(0)
    if (pos !== data.byteLength) fail(`${data.byteLength - pos} bytes after the value`)
    return value
  } finally {
    // Let go of the message: a decoded value never points into it.
    data = EMPTY
    view = EMPTY_VIEW
    text8 = EMPTY_TEXT
  }
}

function fail(what: string, at = pos): never {
  throw new CborError(`${what} (at byte ${at})`)
}

function need(n: number): void {
  if (n > data.byteLength - pos) fail(`${n} bytes needed, ${data.byteLength - pos} left`)
}

/** The argument of the head whose initial byte (already read) has additional info `info`. */
function argument(info: number, at: number): number {
  if (info < 24) return info
  let n: number
  switch (info) {
    case 24:
    case 25:
    case 26: {
      // 1, 2 or 4 bytes; each width holds values the one before could not (shortest form).
      const width = 1 << (info - 24)
      need(width)
      n = width === 1 ? data[pos] : width === 2 ? view.getUint16(pos) : view.getUint32(pos)
      pos += width
      if (n < (width === 1 ? 24 : 2 ** (4 * width))) fail('integer in more bytes than needed', at)
      return n
    }
    case 27: {
      need(8)
      const hi = view.getUint32(pos)
      const lo = view.getUint32(pos + 4)
      pos += 8
      if (hi === 0) fail('integer in more bytes than needed', at)
      if (hi > 0x1fffff) fail('integer outside the safe range', at)
      return hi * 0x100000000 + lo
    }
    case 31:
      return fail('indefinite length', at)
    default:
      return fail(`reserved additional info ${info}`, at)
  }
}

function item(depth: number): unknown {
  if (pos >= data.byteLength) fail('unexpected end of data')
  const at = pos
  const initial = data[pos++]
  const major = initial >> 5
  const info = initial & 0x1f
  switch (major) {
    case 0:
      return argument(info, at)
    case 1: {
      const n = argument(info, at)
      if (n > Number.MAX_SAFE_INTEGER - 1) fail('integer outside the safe range', at)
      return -1 - n
    }
    case 2: {
      const n = argument(info, at)
      need(n)
      // A copy, never a view (Buffer's slice is one): a held value must not keep the whole message alive.
      const out = new Uint8Array(n)
      out.set(data.subarray(pos, pos + n))
      pos += n
      return out
    }
    case 3: {
      const n = argument(info, at)
      need(n)
      const s = text(pos, n)
      pos += n
      return s
    }
    case 4: {
      const n = argument(info, at)
      // Each element takes a byte at least: a count past what is left is a lie. Still not an
      // allocation: arrays nested inside each other all count against the same bytes left, so
      // 127 of them each declaring the rest of a 1 MiB message reserved 1 GB (the review's attack).
      need(n)
      if (depth >= MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH}`, at)
      const out: unknown[] = []
      for (let i = 0; i < n; i++) out.push(item(depth + 1))
      return out
    }
    case 5: {
      const n = argument(info, at)
      need(n * 2)
      if (depth >= MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH}`, at)
      const out: Record<string, unknown> = {}
      for (let i = 0; i < n; i++) {
        const keyAt = pos
        const k = key()
        if (Object.hasOwn(out, k)) fail(`map key ${JSON.stringify(k.slice(0, 32))} twice`, keyAt)
        const v = item(depth + 1)
        if (k === '__proto__')
          Object.defineProperty(out, k, { value: v, configurable: true, enumerable: true, writable: true })
        else out[k] = v
      }
      return out
    }
    case 6:
      return fail('tags are not supported', at)
    default:
      return simple(info, at)
  }
}

/** Short map keys seen before, by a hash of their bytes: a message names the same few fields thousands of times. */
const KEYS = 256
const keyCache: Array<string | undefined> = new Array(KEYS)

function key(): string {
  if (pos >= data.byteLength) fail('unexpected end of data')
  const at = pos
  const initial = data[pos++]
  if (initial >> 5 !== 3) fail('map key is not a text string', at)
  const n = argument(initial & 0x1f, at)
  need(n)
  if (n > 16) {
    const s = text(pos, n)
    pos += n
    return s
  }
  let h = n
  for (let i = pos; i < pos + n; i++) h = (h * 31 + data[i]) | 0
  const slot = h & (KEYS - 1)
  const cached = keyCache[slot]
  if (cached !== undefined && cached.length === n) {
    let same = true
    for (let i = 0; i < n; i++) {
      if (cached.charCodeAt(i) !== data[pos + i]) {
        same = false
        break
      }
    }
    if (same) {
      pos += n
      return cached
    }
  }
  let ascii = true
  for (let i = pos; i < pos + n; i++) if (data[i] >= 0x80) ascii = false
  const s = text(pos, n)
  pos += n
  // Only ASCII keys are kept: one byte per character, which the comparison above relies on.
  if (ascii) keyCache[slot] = s
  return s
}

const utf8 = new TextDecoder()

/**
 * UTF-8, a malformed sequence becoming U+FFFD; a leading byte order mark is dropped, as cborg's
 * TextDecoder does (Buffer's decoding keeps it: `\uFEFFt` and `t` would be two keys here and one
 * key twice there).
 */
function text(from: number, n: number): string {
  if (n >= 3 && data[from] === 0xef && data[from + 1] === 0xbb && data[from + 2] === 0xbf)
    return utf8.decode(data.subarray(from, from + n))
  return text8.toString('utf8', from, from + n)
}

function simple(info: number, at: number): unknown {
  switch (info) {
    case 20:
      return false
    case 21:
      return true
    case 22:
      return null
    case 23:
      return fail('undefined is not supported', at)
    case 25: {
      need(2)
      const v = half(view.getUint16(pos))
      pos += 2
      return finite(v, at)
    }
    case 26: {
      need(4)
      const v = view.getFloat32(pos)
      pos += 4
      return finite(v, at)
    }
    case 27: {
      need(8)
      const v = view.getFloat64(pos)
      pos += 8
      return finite(v, at)
    }
    case 31:
      return fail('unexpected break', at)
    default:
      return fail(`simple value ${info} is not supported`, at)
  }
}

function finite(v: number, at: number): number {
  if (Number.isNaN(v)) fail('NaN is not supported', at)
  if (!Number.isFinite(v)) fail('Infinity is not supported', at)
  return v
}

/** IEEE 754 half precision. */
function half(h: number): number {
  const sign = h & 0x8000 ? -1 : 1
  const exp = (h >> 10) & 0x1f
  const mant = h & 0x3ff
  if (exp === 0) return sign * mant * 2 ** -24
  if (exp === 0x1f) return mant === 0 ? sign * Number.POSITIVE_INFINITY : Number.NaN
  return sign * (1 + mant / 1024) * 2 ** (exp - 15)
}
