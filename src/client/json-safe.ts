/**
 * Task values travel in v8's structured-clone format, which holds more than
 * JSON can. `toJsonSafe` turns any decoded value into one that JSON.stringify
 * prints faithfully, so the CLI can print every result as one JSON line.
 * JSON values stay as they are; the rest take these documented forms:
 *
 * | value                              | JSON form                                        |
 * | ---------------------------------- | ------------------------------------------------ |
 * | BigInt 12n                         | `{"$bigint": "12"}`                              |
 * | Date                               | `{"$date": "2026-01-02T03:04:05.000Z"}` (`null` if invalid) |
 * | Map                                | `{"$map": [[key, value], ...]}`                  |
 * | Set                                | `{"$set": [value, ...]}`                         |
 * | Uint8Array, Buffer, ArrayBuffer, DataView | `{"$bytes": "<base64>"}`                  |
 * | other typed arrays                 | `{"$typed": "Float64Array", "values": [...]}` (BigInt64 values as strings) |
 * | NaN, Infinity, -Infinity           | `{"$number": "NaN"}` etc.                        |
 * | RegExp /a+/g                       | `{"$regexp": "/a+/g"}`                           |
 * | Error                              | `{"$error": {"name": "...", "message": "..."}}`  |
 * | boxed primitives                   | the primitive                                    |
 * | undefined                          | `null` (in arrays and at the top), left out in objects |
 * | a repeated reference on a cycle    | `{"$circular": true}`                            |
 *
 * Plain objects are copied key by key, so a data object that happens to look
 * like one of these forms prints unchanged: the forms are a convention for
 * reading output, not an encoding that round-trips.
 */
import { types } from 'node:util'

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue }

export function toJsonSafe(value: unknown): JsonValue {
  return convert(value, new Set())
}

function convert(v: unknown, path: Set<object>): JsonValue {
  switch (typeof v) {
    case 'string':
    case 'boolean':
      return v
    case 'number':
      return Number.isFinite(v) ? v : { $number: String(v) }
    case 'bigint':
      return { $bigint: v.toString() }
    case 'undefined':
      return null
    case 'symbol':
      return { $symbol: v.description ?? '' }
    case 'function':
      return { $function: v.name }
  }
  if (v === null) return null
  const o = v as object
  if (path.has(o)) return { $circular: true }
  const leaf = convertLeaf(o)
  if (leaf !== undefined) return leaf
  path.add(o)
  try {
    return convertContainer(o, path)
  } finally {
    path.delete(o)
  }
}

/** Objects that hold no other values (dates, bytes, errors...), or undefined. */
function convertLeaf(o: object): JsonValue | undefined {
  if (types.isDate(o)) {
    const t = (o as Date).getTime()
    return { $date: Number.isNaN(t) ? null : (o as Date).toISOString() }
  }
  if (types.isRegExp(o)) return { $regexp: String(o) }
  if (types.isBoxedPrimitive(o)) return convert(o.valueOf(), new Set())
  if (types.isNativeError(o)) {
    const e = o as Error
    return { $error: { name: e.name, message: e.message } }
  }
  if (types.isArrayBuffer(o) || types.isSharedArrayBuffer(o)) {
    return { $bytes: Buffer.from(o as ArrayBuffer).toString('base64') }
  }
  if (ArrayBuffer.isView(o)) {
    if (o instanceof Uint8Array || types.isDataView(o)) {
      return { $bytes: Buffer.from(o.buffer, o.byteOffset, o.byteLength).toString('base64') }
    }
    const arr = o as unknown as ArrayLike<number | bigint>
    const values: JsonValue[] = Array.from(arr, (x) =>
      typeof x === 'bigint' ? x.toString() : Number.isFinite(x) ? x : { $number: String(x) },
    )
    return { $typed: o.constructor.name, values }
  }
  return undefined
}

function convertContainer(o: object, path: Set<object>): JsonValue {
  if (Array.isArray(o)) return o.map((x) => convert(x, path))
  if (types.isMap(o)) {
    return { $map: [...(o as Map<unknown, unknown>)].map(([k, x]) => [convert(k, path), convert(x, path)]) }
  }
  if (types.isSet(o)) return { $set: [...(o as Set<unknown>)].map((x) => convert(x, path)) }
  const out: { [key: string]: JsonValue } = {}
  for (const [k, x] of Object.entries(o)) {
    if (x === undefined) continue
    out[k] = convert(x, path)
  }
  return out
}
