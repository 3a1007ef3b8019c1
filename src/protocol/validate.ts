/**
 * Small declarative validators for decoded wire messages.
 *
 * A `Check<T>` takes an untrusted value (what cborg decoded) and a path used
 * in error messages (`batch.tasks[3].input`), and returns a fresh value of
 * type T built from scratch, or throws RemoteProtocolError naming the field.
 * Nothing decoded is passed through: objects are rebuilt with only the known
 * keys, arrays are copied, byte strings are copied off the frame buffer.
 */
import { RemoteProtocolError } from '../errors.ts'

export type Check<T> = (value: unknown, path: string) => T

/** Marks an object field that may be absent (never null or undefined on the wire). */
export interface OptionalCheck<T> {
  readonly optional: Check<T>
}

type Field = Check<unknown> | OptionalCheck<unknown>
export type Shape = Record<string, Field>
type RequiredKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends OptionalCheck<unknown> ? never : K
}[keyof S]
type OptionalKeys<S extends Shape> = {
  [K in keyof S]: S[K] extends OptionalCheck<unknown> ? K : never
}[keyof S]
type Out<F> = F extends OptionalCheck<infer T> ? T : F extends Check<infer T> ? T : never
export type Infer<S extends Shape> = { [K in RequiredKeys<S>]: Out<S[K]> } & {
  [K in OptionalKeys<S>]?: Out<S[K]>
}

export function fail(path: string, message: string): never {
  throw new RemoteProtocolError(`${path}: ${message}`)
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    return false
  }
  const proto = Object.getPrototypeOf(value)
  return proto === Object.prototype || proto === null
}

/** A non-negative safe integer, at most `max`. */
export function uint(max: number = Number.MAX_SAFE_INTEGER): Check<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value)) fail(path, 'expected an integer')
    if (value < 0) fail(path, 'expected a non-negative integer')
    if (value > max) fail(path, `expected at most ${max}`)
    return value
  }
}

/** A finite number (floats allowed) in [min, max]. */
export function num(min: number, max: number): Check<number> {
  return (value, path) => {
    if (typeof value !== 'number' || !Number.isFinite(value)) fail(path, 'expected a finite number')
    if (value < min || value > max) fail(path, `expected a number in [${min}, ${max}]`)
    return value
  }
}

export interface StrOptions {
  /** Maximum length in UTF-16 code units. */
  max: number
  min?: number
  pattern?: RegExp
}

export function str(opts: StrOptions): Check<string> {
  const min = opts.min ?? 0
  return (value, path) => {
    if (typeof value !== 'string') fail(path, 'expected a string')
    if (value.length > opts.max) fail(path, `string longer than ${opts.max}`)
    if (value.length < min)
      fail(path, min === 1 ? 'expected a non-empty string' : `string shorter than ${min}`)
    if (opts.pattern !== undefined && !opts.pattern.test(value)) fail(path, 'string has the wrong format')
    return value
  }
}

export function bool(): Check<boolean> {
  return (value, path) => {
    if (typeof value !== 'boolean') fail(path, 'expected a boolean')
    return value
  }
}

/** A byte string of at most `max` bytes, copied so it does not pin the frame it came in. */
export function bytes(max: number): Check<Uint8Array> {
  return (value, path) => {
    if (!(value instanceof Uint8Array)) fail(path, 'expected bytes')
    if (value.byteLength > max) fail(path, `byte string longer than ${max}`)
    return value.slice()
  }
}

export function literal<const T extends string | number | boolean>(expected: T): Check<T> {
  return (value, path) => {
    if (value !== expected) fail(path, `expected ${JSON.stringify(expected)}`)
    return expected
  }
}

export function oneOf<const T extends string>(...choices: T[]): Check<T> {
  const set = new Set<string>(choices)
  return (value, path) => {
    if (typeof value !== 'string' || !set.has(value)) fail(path, `expected one of ${choices.join(', ')}`)
    return value as T
  }
}

export function arr<T>(item: Check<T>, max: number): Check<T[]> {
  return (value, path) => {
    if (!Array.isArray(value)) fail(path, 'expected an array')
    if (value.length > max) fail(path, `more than ${max} items`)
    const out: T[] = new Array(value.length)
    for (let i = 0; i < value.length; i++) out[i] = item(value[i], `${path}[${i}]`)
    return out
  }
}

export function optional<T>(check: Check<T>): OptionalCheck<T> {
  return { optional: check }
}

function isOptional(field: Field): field is OptionalCheck<unknown> {
  return typeof field !== 'function'
}

/**
 * A map with exactly the keys of `shape` (optional ones may be missing);
 * unknown keys are rejected. `ignore` names keys checked elsewhere (the
 * envelope's `v` and `t`).
 */
export function obj<S extends Shape>(shape: S, ignore: readonly string[] = []): Check<Infer<S>> {
  const keys = Object.keys(shape)
  const known = new Set([...keys, ...ignore])
  return (value, path) => {
    if (!isPlainObject(value)) fail(path, 'expected a map')
    for (const key of Object.keys(value)) {
      if (!known.has(key)) fail(path, `unexpected field ${JSON.stringify(key.slice(0, 64))}`)
    }
    const out: Record<string, unknown> = {}
    for (const key of keys) {
      const field = shape[key]
      const present = Object.hasOwn(value, key)
      if (isOptional(field)) {
        if (present) out[key] = field.optional(value[key], `${path}.${key}`)
      } else {
        if (!present) fail(`${path}.${key}`, 'missing')
        out[key] = field(value[key], `${path}.${key}`)
      }
    }
    return out as Infer<S>
  }
}

/** A string-keyed map of at most `max` entries (e.g. an environment). */
export function record<V>(key: Check<string>, val: Check<V>, max: number): Check<Record<string, V>> {
  return (value, path) => {
    if (!isPlainObject(value)) fail(path, 'expected a map')
    const entries = Object.entries(value)
    if (entries.length > max) fail(path, `more than ${max} entries`)
    const out: Record<string, V> = Object.create(null)
    for (const [k, v] of entries) {
      key(k, `${path} key`)
      out[k] = val(v, `${path}.${k.slice(0, 64)}`)
    }
    return { ...out }
  }
}

/**
 * A union discriminated by the string field `tag`: picks the variant's check,
 * which must itself accept (ignore) the tag field.
 */
export function variant<T>(tag: string, variants: Record<string, Check<T>>): Check<T> {
  const names = Object.keys(variants)
  return (value, path) => {
    if (!isPlainObject(value)) fail(path, 'expected a map')
    const kind = value[tag]
    if (typeof kind !== 'string' || !Object.hasOwn(variants, kind)) {
      fail(`${path}.${tag}`, `expected one of ${names.join(', ')}`)
    }
    return variants[kind](value, path)
  }
}

/** Applies `check` then a predicate over the built value (cross-field rules). */
export function refine<T>(check: Check<T>, rule: (value: T, path: string) => void): Check<T> {
  return (value, path) => {
    const out = check(value, path)
    rule(out, path)
    return out
  }
}
