/**
 * The envelope every gridnode message shares: a CBOR map `{ v, t, ...fields }`
 * where `v` is the schema version (1) and `t` the message type. A codec is a
 * table from `t` to the check of the other fields; decoding checks the size
 * first, decodes inside try/catch, then validates and rebuilds the message.
 */
import { LocalProtocolError, RemoteProtocolError } from '../errors.ts'
import { decodeCbor as decodeStrict } from './cbor-decode.ts'
import { encodeCbor } from './cbor-encode.ts'
import { type Check, fail, type Infer, isPlainObject, obj, type Shape, str } from './validate.ts'

export const SCHEMA_VERSION = 1

/**
 * Whether encoders validate our own messages before sending them (a bug on our
 * side throws LocalProtocolError). It costs a full decode of every message we
 * send, so daemons skip it; the test suite (VITEST, inherited by the daemons
 * its tests start) keeps it on, and GRIDNODE_VALIDATE_OUTGOING=1 or =0 forces it.
 */
let validateOutgoing =
  process.env.GRIDNODE_VALIDATE_OUTGOING === '1' ||
  (process.env.VITEST !== undefined && process.env.GRIDNODE_VALIDATE_OUTGOING !== '0')

export function setValidateOutgoing(on: boolean): void {
  validateOutgoing = on
}

/** Decodes CBOR bytes after a size check; any failure is the peer's. */
export function decodeCbor(bytes: Uint8Array, maxBytes: number, what: string): unknown {
  if (bytes.byteLength > maxBytes) {
    throw new RemoteProtocolError(`${what}: message of ${bytes.byteLength} bytes exceeds ${maxBytes}`)
  }
  try {
    return decodeStrict(bytes)
  } catch (err) {
    throw new RemoteProtocolError(`${what}: malformed CBOR (${(err as Error).message})`, { cause: err })
  }
}

/** The envelope's own checks: a map whose `v` is 1 and whose `t` is known. */
function checkEnvelope<T extends string>(value: unknown, what: string, types: readonly T[]): T {
  if (!isPlainObject(value)) fail(what, 'expected a map')
  if (value.v !== SCHEMA_VERSION) fail(`${what}.v`, `unsupported schema version (want ${SCHEMA_VERSION})`)
  const t = value.t
  if (typeof t !== 'string' || !(types as readonly string[]).includes(t)) {
    const shown =
      typeof t === 'string'
        ? JSON.stringify(t.slice(0, 32))
        : `of type ${Array.isArray(t) ? 'array' : typeof t}`
    fail(`${what}.t`, `unknown message type ${shown}`)
  }
  return t as T
}

/** A message as code sees it: `t` plus its fields (no `v`). */
export type Tagged = { t: string }

/** Field checks per message type; each builds the fields other than `t`. */
export type Schemas<M extends Tagged> = { [T in M['t']]: Check<Omit<Extract<M, { t: T }>, 't'>> }

export interface MessageCodec<M extends Tagged> {
  readonly name: string
  readonly maxBytes: number
  encode(msg: M): Uint8Array
  /** Throws RemoteProtocolError naming the field on any problem. */
  decode(bytes: Uint8Array): M
}

/** An object check for a message's fields: the envelope keys `v` and `t` are checked by the codec. */
export function fields<S extends Shape>(shape: S): Check<Infer<S>> {
  return obj(shape, ['v', 't'])
}

/** Builds a codec over a set of message types from the check of each type's fields. */
export function messageCodec<M extends Tagged>(
  name: string,
  maxBytes: number,
  schemas: Schemas<M>,
): MessageCodec<M> {
  const types = Object.keys(schemas) as M['t'][]
  const decodeValue = (value: unknown, what: string): M => {
    const t = checkEnvelope(value, what, types)
    const check = schemas[t] as Check<object>
    return { t, ...check(value, `${what}.${t}`) } as unknown as M
  }
  return {
    name,
    maxBytes,
    encode(msg: M): Uint8Array {
      const wire = { ...msg, v: SCHEMA_VERSION }
      if (validateOutgoing) {
        try {
          decodeValue(wire, name)
        } catch (err) {
          throw new LocalProtocolError(`refusing to send invalid ${(err as Error).message}`, { cause: err })
        }
      }
      const bytes = encodeCbor(wire)
      if (bytes.byteLength > maxBytes) {
        throw new LocalProtocolError(
          `${name}.${msg.t}: message of ${bytes.byteLength} bytes exceeds ${maxBytes}`,
        )
      }
      return bytes
    },
    decode(bytes: Uint8Array): M {
      return decodeValue(decodeCbor(bytes, maxBytes, name), name)
    },
  }
}

/** The reply a server sends when its handler failed on a well-formed request. */
export interface ErrorReply {
  t: 'error'
  code: string
  message: string
}

export const MAX_ERROR_MESSAGE = 4096

export const errorReplyFields: Check<Omit<ErrorReply, 't'>> = fields({
  code: str({ max: 64 }),
  message: str({ max: MAX_ERROR_MESSAGE }),
})

/** Builds an ErrorReply from anything thrown, truncated to fit the schema. */
export function toErrorReply(err: unknown): ErrorReply {
  const e = err as { code?: unknown; message?: unknown }
  const code = typeof e?.code === 'string' ? e.code.slice(0, 64) : 'GN_HANDLER_FAILED'
  const message = typeof e?.message === 'string' ? e.message : String(err)
  return { t: 'error', code, message: message.slice(0, MAX_ERROR_MESSAGE) }
}
