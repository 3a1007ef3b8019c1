/**
 * The codecs under fuzz, as one table, and the decode property: decoding
 * either returns a value that re-encodes and decodes to itself, or throws
 * RemoteProtocolError; never another error, never a slow decode.
 */
import { isDeepStrictEqual } from 'node:util'
import fc from 'fast-check'
import { RemoteProtocolError } from '../../src/errors.ts'
import { ADVERT_MAX_BYTES, decodeAdvert, encodeAdvert } from '../../src/protocol/advert/codec.ts'
import { blobReplyCodec, blobRequestCodec } from '../../src/protocol/blob/codec.ts'
import { leaseReplyCodec, leaseRequestCodec } from '../../src/protocol/lease/codec.ts'
import { memberReplyCodec, memberRequestCodec } from '../../src/protocol/membership/codec.ts'
import type { MessageCodec } from '../../src/protocol/message.ts'
import { resultReplyCodec, resultRequestCodec } from '../../src/protocol/result/codec.ts'
import { stealReplyCodec, stealRequestCodec } from '../../src/protocol/steal/codec.ts'
import {
  batch,
  copy,
  hex,
  id,
  type Kind,
  type Sample,
  samples,
  smallBytes,
  uint,
  validWire,
  type Wire,
} from './gen.ts'

export interface FuzzCodec {
  name: string
  maxBytes: number
  /** Message types the decoder knows (for envelope-shaped junk). */
  types: readonly string[]
  valid: fc.Arbitrary<Wire>
  decode(bytes: Uint8Array): unknown
  encode(value: unknown): Uint8Array
}

// biome-ignore lint/suspicious/noExplicitAny: the table holds codecs of every message type
function fromCodec(codec: MessageCodec<any>, types: string[], valid: fc.Arbitrary<Wire>): FuzzCodec {
  return {
    name: codec.name,
    maxBytes: codec.maxBytes,
    types,
    valid,
    decode: (b) => codec.decode(b),
    encode: (v) => codec.encode(v as { t: string }),
  }
}

const wire = (t: string, body: fc.Arbitrary<Record<string, unknown>>) =>
  body.map((b): Wire => ({ v: 1, t, ...b }))
const errorReply = wire(
  'error',
  fc.record({ code: fc.string({ maxLength: 64 }), message: fc.string({ maxLength: 64 }) }),
)
const taskKey = fc.record({ job: id, index: uint, attempt: uint })
const copyKey = fc.record({ job: id, index: uint, attempt: uint, copy })

/** Requests (what a server decodes), then replies (what a client decodes from a hostile server). */
export const CODECS: Record<string, FuzzCodec> = {
  steal: fromCodec(stealRequestCodec, ['steal', 'push'], validWire.steal),
  result: fromCodec(resultRequestCodec, ['results'], validWire.result),
  lease: fromCodec(leaseRequestCodec, ['lease', 'cancel'], validWire.lease),
  blob: fromCodec(blobRequestCodec, ['blob-get'], validWire.blob),
  advert: {
    name: 'capacity',
    maxBytes: ADVERT_MAX_BYTES,
    types: ['advert'],
    valid: validWire.advert,
    decode: decodeAdvert,
    encode: (v) => encodeAdvert(v as Parameters<typeof encodeAdvert>[0]),
  },
  member: fromCodec(memberRequestCodec, ['hello', 'redeem', 'renew'], validWire.member),
  'steal-reply': fromCodec(
    stealReplyCodec,
    ['steal-reply', 'push-ack', 'error'],
    fc.oneof(
      wire('steal-reply', fc.record({ batch })),
      wire('push-ack', fc.record({ accepted: fc.nat(65_536) })),
      errorReply,
    ),
  ),
  'result-reply': fromCodec(
    resultReplyCodec,
    ['results-ack', 'error'],
    fc.oneof(wire('results-ack', fc.record({ tasks: fc.array(taskKey, { maxLength: 5 }) })), errorReply),
  ),
  'lease-reply': fromCodec(
    leaseReplyCodec,
    ['lease-answer', 'cancel-ack', 'error'],
    fc.oneof(
      wire(
        'lease-answer',
        fc.record({
          drop: fc.array(copyKey, { maxLength: 5 }),
          cancelledJobs: fc.array(id, { maxLength: 3 }),
        }),
      ),
      wire('cancel-ack', fc.record({})),
      errorReply,
    ),
  ),
  'blob-reply': fromCodec(
    blobReplyCodec,
    ['blob-header', 'blob-chunk', 'error'],
    fc.oneof(
      wire('blob-header', fc.record({ found: fc.constant(true), size: fc.nat(256 * 1024 * 1024) })),
      wire('blob-header', fc.record({ found: fc.constant(false), size: fc.constant(0) })),
      wire('blob-chunk', fc.record({ data: smallBytes(256).filter((b) => b.byteLength > 0) })),
      errorReply,
    ),
  ),
  'member-reply': fromCodec(
    memberReplyCodec,
    ['hello-ok', 'redeemed', 'renewed', 'error'],
    fc.oneof(
      wire(
        'hello-ok',
        fc.record({ cert: smallBytes(300), revocations: fc.array(smallBytes(100), { maxLength: 3 }) }),
      ),
      wire('redeemed', fc.record({ cert: smallBytes(300) })),
      wire('renewed', fc.record({ cert: smallBytes(300) })),
      errorReply,
    ),
  ),
}

/** A property failed: the message says what, with the input in hex. */
export class FuzzFailure extends Error {
  override name = 'FuzzFailure'
}

/**
 * Bugs found by these fuzzers and reported to the owner of the file, tolerated
 * here (and counted) so that the fuzzers keep looking past them. Each has an
 * `it.fails` reproducer in test/fuzz/known-bugs.test.ts; once it is fixed,
 * that test fails: delete the entry here and turn the reproducer into `it`.
 */
export const KNOWN_BUGS: Record<string, (err: unknown) => boolean> = {
  // None open. Fixed: 'envelope-string-t' (message.ts), 'job-id-collision' (scheduler.ts).
}

export function knownBug(err: unknown): string | undefined {
  for (const [name, matches] of Object.entries(KNOWN_BUGS)) if (matches(err)) return name
  return undefined
}

/** Slowest single decode allowed (ms): generous for a loaded 2-core box, far below a stall. */
export const DECODE_BOUND_MS = 250

export interface DecodeTally {
  accepted: number
  rejected: number
  byKind: Record<Kind, number>
  slowestMs: number
  /** Inputs that hit a bug already reported (see KNOWN_BUGS), by bug. */
  known: Record<string, number>
}

export function newTally(): DecodeTally {
  return {
    accepted: 0,
    rejected: 0,
    byKind: { valid: 0, mutated: 0, cbor: 0, bytes: 0, truncated: 0, flipped: 0 },
    slowestMs: 0,
    known: {},
  }
}

/** Decodes `bytes` and checks the decode property; returns the value or undefined if refused. */
export function checkDecode(codec: FuzzCodec, bytes: Uint8Array, tally?: DecodeTally): unknown {
  const started = performance.now()
  let value: unknown
  let refusal: unknown
  let refused = false
  try {
    value = codec.decode(bytes)
  } catch (err) {
    refused = true
    refusal = err
  }
  const ms = performance.now() - started
  if (tally && ms > tally.slowestMs) tally.slowestMs = ms
  if (ms > DECODE_BOUND_MS) {
    throw new FuzzFailure(`${codec.name}: decode took ${ms.toFixed(0)} ms\n  input: ${hex(bytes)}`)
  }
  if (refused) {
    const err = refusal
    if (!(err instanceof RemoteProtocolError)) {
      const known = knownBug(err)
      if (known !== undefined) {
        if (tally) tally.known[known] = (tally.known[known] ?? 0) + 1
        return undefined
      }
      throw new FuzzFailure(
        `${codec.name}: decode threw ${(err as Error)?.name ?? typeof err} (not RemoteProtocolError): ` +
          `${(err as Error)?.message}\n  input: ${hex(bytes)}\n  stack: ${(err as Error)?.stack}`,
      )
    }
    if (tally) tally.rejected++
    return undefined
  }
  let again: Uint8Array
  try {
    again = codec.encode(value)
  } catch (err) {
    throw new FuzzFailure(
      `${codec.name}: decoded value does not re-encode: ${(err as Error).message}\n  input: ${hex(bytes)}`,
    )
  }
  let back: unknown
  try {
    back = codec.decode(again)
  } catch (err) {
    throw new FuzzFailure(
      `${codec.name}: re-encoded value does not decode: ${(err as Error).message}\n  input: ${hex(bytes)}`,
    )
  }
  if (!isDeepStrictEqual(back, value)) {
    throw new FuzzFailure(
      `${codec.name}: decode(encode(decode(x))) differs from decode(x)\n  input: ${hex(bytes)}`,
    )
  }
  if (tally) tally.accepted++
  return value
}

export interface RunOptions {
  numRuns: number
  seed?: number
}

/** Runs the decode property over the mixed samples of one codec. Valid-by-construction samples must be accepted. */
export function fuzzDecode(codec: FuzzCodec, opts: RunOptions): DecodeTally {
  const tally = newTally()
  const arb: fc.Arbitrary<Sample> = samples(codec.valid, codec.types)
  fc.assert(
    fc.property(arb, (s) => {
      tally.byKind[s.kind]++
      const value = checkDecode(codec, s.bytes, tally)
      if (s.kind === 'valid' && value === undefined) {
        let why = ''
        try {
          codec.decode(s.bytes)
        } catch (err) {
          why = (err as Error).message
        }
        throw new FuzzFailure(
          `${codec.name}: a message built to the schema was refused (${why}); ` +
            `test/fuzz/gen.ts is out of date with src/protocol/schemas.ts?\n  input: ${hex(s.bytes)}`,
        )
      }
    }),
    { numRuns: opts.numRuns, seed: opts.seed },
  )
  return tally
}

/** One message just over the codec's limit, and one far over (decode must refuse both without work). */
export function oversized(codec: FuzzCodec): void {
  for (const size of [codec.maxBytes + 1, codec.maxBytes * 4]) {
    const bytes = new Uint8Array(size)
    // A CBOR byte string header claiming the whole buffer, so a decoder that skipped the size check would try.
    bytes.set([0x5a, (size >>> 24) & 0xff, (size >>> 16) & 0xff, (size >>> 8) & 0xff, size & 0xff])
    const value = checkDecode(codec, bytes)
    if (value !== undefined) throw new FuzzFailure(`${codec.name}: accepted a ${size}-byte message`)
  }
}
