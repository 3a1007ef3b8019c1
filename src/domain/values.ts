/**
 * Task values on the wire: node:v8's structured-clone format, so JSON values,
 * typed arrays, ArrayBuffer, Map, Set, Date, RegExp, BigInt, Error and boxed
 * primitives (nested, cycles included) survive a round trip.
 *
 * Two choices beyond v8's own rules:
 * - `undefined` encodes to zero bytes, and zero bytes decode to `undefined`
 *   (a `noop` task's value, and the result of every void function).
 * - Class instances are refused instead of silently losing their class and
 *   private fields: only plain objects (prototype Object.prototype or null)
 *   and the built-ins above are accepted.
 *
 * Numbers, booleans, null and short Latin-1 strings take a fast path
 * (value-scalars.ts): bytes v8 reads as the same value, v8's own in the usual case.
 */
import { types } from 'node:util'
import v8 from 'node:v8'
import { BadValueError, UnserializableError } from './errors.ts'
import { decodeScalar, encodeScalar, NOT_SCALAR } from './value-scalars.ts'
import { scanValue } from './value-scan.ts'

const HINT =
  'values must be JSON-like data, typed arrays, ArrayBuffer, Map, Set, Date, RegExp, BigInt or Error; ' +
  'convert class instances to plain objects'

interface Frame {
  value: object
  parent: Frame | undefined
  step: string
}

/** Encodes a structured value; throws UnserializableError (GN_UNSERIALIZABLE) naming the offending part. */
export function encodeValue(value: unknown, label = 'value'): Uint8Array {
  if (value === undefined) return new Uint8Array(0)
  const scalar = encodeScalar(value)
  if (scalar !== undefined) return scalar
  checkEncodable(value, label)
  let buf: Buffer
  try {
    buf = v8.serialize(value)
  } catch (err) {
    const reason = err instanceof RangeError ? 'it is nested too deeply' : (err as Error).message
    throw new UnserializableError(`cannot encode ${label}: ${reason}`, { cause: err })
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
}

/**
 * Encodes `fields` with `built` added under `key`: `fields` are checked as encodeValue checks a
 * value (the same refusals, naming the part), `built` is not, for parts the caller made of
 * encodeValue's output already (a submit body's tasks, whose inputs are encoded bytes). The walk
 * of a 10,000-task body was a tenth of the client's CPU in a map of no-ops.
 */
export function encodeWith(
  fields: Record<string, unknown>,
  key: string,
  built: unknown,
  label = 'value',
): Uint8Array {
  checkEncodable(fields, label)
  let buf: Buffer
  try {
    buf = v8.serialize({ ...fields, [key]: built })
  } catch (err) {
    const reason = err instanceof RangeError ? 'it is nested too deeply' : (err as Error).message
    throw new UnserializableError(`cannot encode ${label}: ${reason}`, { cause: err })
  }
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
}

/**
 * Decodes bytes made by encodeValue; throws BadValueError (GN_BAD_VALUE) on
 * anything else. The bytes are copied first, so typed arrays in the result
 * never alias the caller's buffer. Bytes from anywhere are safe here: they
 * are pre-scanned (scanValue) so declared sizes never outgrow the bytes.
 */
export function decodeValue(bytes: Uint8Array): unknown {
  if (!(bytes instanceof Uint8Array)) throw new BadValueError('cannot decode value: expected a Uint8Array')
  if (bytes.byteLength === 0) return undefined
  const scalar = decodeScalar(bytes)
  if (scalar !== NOT_SCALAR) return scalar
  return decodeOwned(new Uint8Array(bytes))
}

/**
 * decodeValue without the defensive copy, for bytes nobody else holds (a worker's own message
 * copy). A view into a bigger buffer (one task of a batch) is copied all the same: v8 builds typed
 * arrays over the whole buffer, which would hand a task its neighbours' inputs.
 */
export function decodeOwned(bytes: Uint8Array): unknown {
  if (bytes.byteLength === 0) return undefined
  const scalar = decodeScalar(bytes)
  if (scalar !== NOT_SCALAR) return scalar
  if (bytes.byteOffset !== 0 || bytes.byteLength !== bytes.buffer.byteLength) bytes = new Uint8Array(bytes)
  scanValue(bytes)
  try {
    return v8.deserialize(bytes)
  } catch (err) {
    throw new BadValueError(`cannot decode value (${bytes.byteLength} bytes): ${(err as Error).message}`, {
      cause: err,
    })
  }
}

function checkEncodable(root: unknown, label: string): void {
  const bad = describeUnencodable(root)
  if (bad !== undefined) throw new UnserializableError(`cannot encode ${bad} at ${label}: ${HINT}`)
  if (typeof root !== 'object' || root === null) return
  const seen = new Set<object>()
  const stack: Frame[] = [{ value: root, parent: undefined, step: '' }]
  while (stack.length > 0) {
    const frame = stack.pop()!
    if (seen.has(frame.value)) continue
    seen.add(frame.value)
    for (const [step, child] of childrenOf(frame.value)) {
      const what = describeUnencodable(child)
      if (what !== undefined) {
        throw new UnserializableError(`cannot encode ${what} at ${pathOf(frame, label) + step}: ${HINT}`)
      }
      if (typeof child === 'object' && child !== null && !seen.has(child)) {
        stack.push({ value: child, parent: frame, step })
      }
    }
  }
}

/** Why a value cannot be encoded by itself (children are checked separately), or undefined. */
function describeUnencodable(v: unknown): string | undefined {
  if (typeof v === 'function') return `a function${v.name ? ` (${v.name})` : ''}`
  if (typeof v === 'symbol') return `a symbol (${v.toString()})`
  if (typeof v !== 'object' || v === null) return undefined
  if (Array.isArray(v) || ArrayBuffer.isView(v) || types.isArrayBuffer(v)) return undefined
  if (types.isMap(v) || types.isSet(v) || types.isDate(v) || types.isRegExp(v)) return undefined
  if (types.isNativeError(v) || types.isBoxedPrimitive(v)) return undefined
  const proto = Object.getPrototypeOf(v)
  if (proto === null || Object.getPrototypeOf(proto) === null) return undefined
  const ctor = Object.hasOwn(proto, 'constructor') ? proto.constructor : undefined
  const name = typeof ctor === 'function' ? ctor.name : ''
  return name ? `an instance of ${name}` : 'an object with a custom prototype'
}

function* childrenOf(v: object): Generator<[string, unknown]> {
  if (ArrayBuffer.isView(v) || types.isArrayBuffer(v) || types.isNativeError(v)) return
  if (types.isDate(v) || types.isRegExp(v) || types.isBoxedPrimitive(v)) return
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) if (needsCheck(v[i])) yield [`[${i}]`, v[i]]
    return
  }
  if (types.isMap(v)) {
    let i = 0
    for (const [k, val] of v as Map<unknown, unknown>) {
      if (needsCheck(k)) yield [`.keys()[${i}]`, k]
      if (needsCheck(val)) yield [`.get(${keyText(k)})`, val]
      i++
    }
    return
  }
  if (types.isSet(v)) {
    let i = 0
    for (const val of v as Set<unknown>) {
      if (needsCheck(val)) yield [`.values()[${i}]`, val]
      i++
    }
    return
  }
  for (const key of Object.keys(v)) {
    const val = (v as Record<string, unknown>)[key]
    if (needsCheck(val)) yield [propStep(key), val]
  }
}

/** Primitives other than symbols are always encodable. */
function needsCheck(v: unknown): boolean {
  const t = typeof v
  return (t === 'object' && v !== null) || t === 'function' || t === 'symbol'
}

function keyText(k: unknown): string {
  if (typeof k === 'string') return JSON.stringify(k)
  if (typeof k === 'number' || typeof k === 'boolean' || typeof k === 'bigint') return String(k)
  return '…'
}

function propStep(key: string): string {
  return /^[A-Za-z_$][\w$]*$/.test(key) ? `.${key}` : `[${JSON.stringify(key)}]`
}

function pathOf(frame: Frame, label: string): string {
  const steps: string[] = []
  for (let f: Frame | undefined = frame; f?.parent !== undefined; f = f.parent) steps.push(f.step)
  return label + steps.reverse().join('')
}
