/**
 * Fuzzing the real protocol servers (registerStealProtocol and kin) over
 * in-memory stream pairs: many generated frames per stream, pipelined.
 *
 * Per stream: a prefix of frames that decode, then maybe one bad tail (a frame
 * that does not decode, an oversized or over-long length prefix, a frame cut
 * short by the end of the stream). Properties: every decodable frame gets
 * exactly one reply, in order, that the client's reply codec accepts and that
 * answers it (or is an error reply); a bad tail ends the stream with an
 * abort and a RemoteProtocolError reported; a stream without one is closed
 * cleanly; the handler settles within a bound; callbacks see only objects the
 * schema accepts, from the connection's peer.
 */
import { createHash } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import fc from 'fast-check'
import { GridnodeError, LocalProtocolError, RemoteProtocolError } from '../../src/errors.ts'
import {
  BLOB_CHUNK_BYTES,
  BLOB_MAX_MESSAGE_BYTES,
  BLOB_PROTOCOL,
  blobReplyCodec,
} from '../../src/protocol/blob/codec.ts'
import { type BlobSource, registerBlobProtocol } from '../../src/protocol/blob/handler.ts'
import { RateLimitedError } from '../../src/protocol/errors.ts'
import { framed } from '../../src/protocol/frames.ts'
import { LEASE_PROTOCOL, leaseReplyCodec, leaseRequestCodec } from '../../src/protocol/lease/codec.ts'
import { registerLeaseProtocol } from '../../src/protocol/lease/handler.ts'
import type { MessageCodec } from '../../src/protocol/message.ts'
import { DEFAULT_RATE_LIMITS, type RateLimits } from '../../src/protocol/rate-limit.ts'
import { RESULT_PROTOCOL, resultReplyCodec, resultRequestCodec } from '../../src/protocol/result/codec.ts'
import { registerResultProtocol } from '../../src/protocol/result/handler.ts'
import type { ServerOptions } from '../../src/protocol/rpc.ts'
import { STEAL_PROTOCOL, stealReplyCodec, stealRequestCodec } from '../../src/protocol/steal/codec.ts'
import { registerStealProtocol } from '../../src/protocol/steal/handler.ts'
import type { ProtocolRegistrar } from '../../src/protocol/stream.ts'
import type { Batch } from '../../src/scheduler/types.ts'
import { FakeRegistrar, frame, lengthPrefix } from '../protocol/fakes.ts'
import { CODECS, type FuzzCodec, FuzzFailure, knownBug, type RunOptions } from './codecs.ts'
import { hex, PEERS, type Sample, STREAM_MIX, samples, validWire, type Wire } from './gen.ts'

/** A stream must be answered and settled within this (ms), however hostile its frames. */
export const STREAM_BOUND_MS = 5000

export interface ServerTally {
  /** Frames sent to the server (good and bad). */
  messages: number
  streams: number
  /** Requests the handler callbacks received. */
  handled: number
  replies: number
  errorReplies: number
  /** Streams the server aborted for a bad tail. */
  aborted: number
  known: Record<string, number>
}

function newServerTally(): ServerTally {
  return { messages: 0, streams: 0, handled: 0, replies: 0, errorReplies: 0, aborted: 0, known: {} }
}

/** Rate limits off, so generated traffic reaches the handlers (a separate run keeps the defaults). */
export const NO_LIMITS: Partial<RateLimits> = Object.fromEntries(
  Object.keys(DEFAULT_RATE_LIMITS).map((k) => [k, null]),
)

function within<T>(promise: Promise<T>, ms: number, what: () => string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new FuzzFailure(`hang: ${what()} not settled within ${ms} ms`)), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

async function sendAll(stream: Stream, bytes: Uint8Array): Promise<void> {
  if (!stream.send(bytes)) await stream.onDrain()
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0))
  let at = 0
  for (const p of parts) {
    out.set(p, at)
    at += p.byteLength
  }
  return out
}

/** What ends a stream after its good frames. */
type Tail =
  | { kind: 'none' }
  | { kind: 'bad-frame'; sample: Sample }
  | { kind: 'oversized' }
  | { kind: 'long-prefix' }
  | { kind: 'cut' }

function tailBytes(tail: Tail, maxBytes: number): Uint8Array | undefined {
  switch (tail.kind) {
    case 'none':
      return undefined
    case 'bad-frame':
      return frame(tail.sample.bytes)
    case 'oversized':
      return lengthPrefix(maxBytes + 1)
    case 'long-prefix':
      return new Uint8Array(12).fill(0xff)
    case 'cut':
      return concat([lengthPrefix(100), new Uint8Array(10)])
  }
}

/** Decodes with the server's own codec to predict what it will do; known bugs count as refusals. */
function decodes(codec: FuzzCodec, bytes: Uint8Array): boolean {
  try {
    codec.decode(bytes)
    return true
  } catch (err) {
    if (err instanceof RemoteProtocolError || knownBug(err) !== undefined) return false
    throw new FuzzFailure(
      `${codec.name}: decode threw ${(err as Error).name}: ${(err as Error).message}\n  input: ${hex(bytes)}`,
    )
  }
}

/**
 * Splits a run's samples into the frames that decode (all sent, pipelined) and
 * the tail that ends the stream: the first sample that does not decode, or
 * another kind of bad ending, or none.
 */
function plan(codec: FuzzCodec, list: Sample[], endWith: Tail['kind']): { good: Sample[]; tail: Tail } {
  const good: Sample[] = []
  let bad: Sample | undefined
  for (const s of list) {
    if (decodes(codec, s.bytes)) good.push(s)
    else bad ??= s
  }
  if (endWith === 'bad-frame')
    return { good, tail: bad ? { kind: 'bad-frame', sample: bad } : { kind: 'none' } }
  return { good, tail: { kind: endWith } as Tail }
}

const tailKind = fc.constantFrom<Tail['kind']>(
  'none',
  'none',
  'bad-frame',
  'bad-frame',
  'oversized',
  'long-prefix',
  'cut',
)

// ---------------------------------------------------------------------------
// Request/response protocols (steal, result, lease, and member via membership.ts)

/** How a callback behaves for one request: answers, throws, or returns a reply its codec refuses. */
export type Misbehave = 'answer' | 'throw' | 'invalid-reply'

export interface RpcTarget {
  name: string
  protocol: string
  codec: FuzzCodec
  // biome-ignore lint/suspicious/noExplicitAny: replies of any protocol
  replies: MessageCodec<any>
  /** Request types that a reply type answers. */
  answers: Record<string, string>
  /** Registers the real server; callbacks call `seen` with what they got (validated by the caller). */
  register(
    registrar: ProtocolRegistrar,
    seen: (peer: string, t: string, req: unknown) => Misbehave,
    options: ServerOptions,
  ): Promise<void>
  /** Errors the server may report besides RemoteProtocolError for bad tails. */
  expectedErrors?: (err: Error) => boolean
}

class Injected extends GridnodeError {
  constructor() {
    super('GN_FUZZ_INJECTED', 'injected handler failure')
  }
}

function misbehaviour(n: number): Misbehave {
  if (n % 17 === 3) return 'throw'
  if (n % 29 === 5) return 'invalid-reply'
  return 'answer'
}

const EMPTY: Batch = { jobs: [], tasks: [] }

export const RPC_TARGETS: Record<'steal' | 'result' | 'lease', RpcTarget> = {
  steal: {
    name: 'steal',
    protocol: STEAL_PROTOCOL,
    codec: CODECS.steal,
    replies: stealReplyCodec,
    answers: { steal: 'steal-reply', push: 'push-ack' },
    register: (registrar, seen, options) =>
      registerStealProtocol(
        registrar,
        {
          async onStealRequest(peer, req) {
            const how = seen(peer, 'steal', { t: 'steal', ...req })
            if (how === 'throw') throw new Injected()
            if (how === 'invalid-reply')
              return { batch: { jobs: [], tasks: [{ job: 'nope' }] } as unknown as Batch }
            return { batch: EMPTY }
          },
          async onPush(peer, req) {
            const how = seen(peer, 'push', { t: 'push', ...req })
            if (how === 'throw') throw new Injected()
            if (how === 'invalid-reply') return { accepted: -1 }
            return { accepted: req.batch.tasks.length }
          },
          onStealReplyWritten() {},
        },
        options,
      ),
  },
  result: {
    name: 'result',
    protocol: RESULT_PROTOCOL,
    codec: CODECS.result,
    replies: resultReplyCodec,
    answers: { results: 'results-ack' },
    register: (registrar, seen, options) =>
      registerResultProtocol(
        registrar,
        {
          async onResults(peer, req) {
            const how = seen(peer, 'results', { t: 'results', ...req })
            if (how === 'throw') throw new Injected()
            if (how === 'invalid-reply') return { tasks: [{ job: '', index: -1, attempt: 0 }] }
            return { tasks: req.results.map(({ job, index, attempt }) => ({ job, index, attempt })) }
          },
        },
        options,
      ),
  },
  lease: {
    name: 'lease',
    protocol: LEASE_PROTOCOL,
    codec: CODECS.lease,
    replies: leaseReplyCodec,
    answers: { lease: 'lease-answer', cancel: 'cancel-ack' },
    register: (registrar, seen, options) =>
      registerLeaseProtocol(
        registrar,
        {
          async onLease(peer, req) {
            const how = seen(peer, 'lease', { t: 'lease', ...req })
            if (how === 'throw') throw new Injected()
            if (how === 'invalid-reply') return { drop: [], cancelledJobs: [''] }
            return {
              drop: req.holdings.map(({ job, index, attempt, copy }) => ({ job, index, attempt, copy })),
              cancelledJobs: [],
            }
          },
          async onCancel(peer, req) {
            const how = seen(peer, 'cancel', { t: 'cancel', ...req })
            if (how === 'throw') throw new Injected()
            return {}
          },
        },
        options,
      ),
  },
}

/** Checks what a callback got: the schema must accept it as is (re-encoding validates), and it came from `peer`. */
function validated(codec: MessageCodec<{ t: string }>, req: unknown): string | undefined {
  try {
    codec.encode(req as { t: string })
    return undefined
  } catch (err) {
    return err instanceof LocalProtocolError ? err.message : `encode threw ${(err as Error).message}`
  }
}

const REQUEST_CODECS: Record<string, MessageCodec<{ t: string }>> = {
  steal: stealRequestCodec,
  result: resultRequestCodec,
  lease: leaseRequestCodec,
}

export interface RpcFuzzOptions extends RunOptions {
  /** Frames per stream at most (default 40). */
  perStream?: number
  /** Rate limits; default none (NO_LIMITS). */
  rateLimits?: Partial<RateLimits>
  /** The request codec used to check what callbacks receive (default: by target name). */
  requestCodec?: MessageCodec<{ t: string }>
}

/**
 * Sends `numRuns` streams of up to `perStream` generated frames through the
 * real server of `target`. Returns the tally; throws FuzzFailure (via
 * fast-check, with seed and shrunk input) on a broken property.
 */
export async function fuzzRpcServer(target: RpcTarget, opts: RpcFuzzOptions): Promise<ServerTally> {
  const tally = newServerTally()
  const registrar = new FakeRegistrar()
  const violations: string[] = []
  const reported: Error[] = []
  let calls = 0
  const requestCodec = opts.requestCodec ?? REQUEST_CODECS[target.name]
  let currentPeer = ''
  await target.register(
    registrar,
    (peer, _t, req) => {
      tally.handled++
      if (peer !== currentPeer) violations.push(`callback got peer ${peer}, stream is from ${currentPeer}`)
      const bad = validated(requestCodec, req)
      if (bad !== undefined) violations.push(`callback got an unvalidated request: ${bad}`)
      return misbehaviour(++calls)
    },
    {
      timeoutMs: STREAM_BOUND_MS / 2,
      rateLimits: opts.rateLimits ?? NO_LIMITS,
      onError: (_peer, err) => reported.push(err),
    },
  )
  const arb = fc.tuple(
    fc.array(samples(target.codec.valid, target.codec.types, STREAM_MIX), {
      minLength: Math.ceil((opts.perStream ?? 40) / 2),
      maxLength: opts.perStream ?? 40,
    }),
    tailKind,
    fc.constantFrom(...PEERS),
  )
  await fc.assert(
    fc.asyncProperty(arb, async ([list, endWith, peer]) => {
      violations.length = 0
      reported.length = 0
      registrar.served.length = 0
      currentPeer = peer
      const { good, tail } = plan(target.codec, list, endWith)
      const served = await registrar.connect(target.protocol, peer)
      tally.streams++
      const bytes = [...good.map((s) => frame(s.bytes))]
      tally.messages += good.length
      const io = framed(served.outbound, target.codec.maxBytes)
      const run = async () => {
        if (bytes.length > 0) await sendAll(served.outbound, concat(bytes))
        // Replies: one per good frame, in order, each the answer to its request or an error reply.
        let limited = 0
        for (const s of good) {
          const got = await io.read()
          if (got === null)
            throw new FuzzFailure(`${target.name}: stream ended before the reply to ${hex(s.bytes, 64)}`)
          const rep = target.replies.decode(got) as { t: string; code?: string }
          const req = target.codec.decode(s.bytes) as { t: string }
          tally.replies++
          if (rep.t === 'error') {
            tally.errorReplies++
            if (rep.code === 'GN_RATE_LIMITED') limited++
          } else if (target.answers[req.t] !== rep.t) {
            throw new FuzzFailure(`${target.name}: a ${req.t} was answered with ${rep.t}`)
          }
        }
        const end = tailBytes(tail, target.codec.maxBytes)
        if (end !== undefined) {
          tally.messages++
          await sendAll(served.outbound, end)
          if (tail.kind === 'cut') await served.outbound.close().catch(() => {})
        } else {
          await served.outbound.close()
        }
        await served.done
        // A flood of rate-limited requests may close the stream; otherwise the tail decides.
        if (end !== undefined) {
          if (served.inbound.status !== 'reset' && served.inbound.status !== 'aborted') {
            throw new FuzzFailure(
              `${target.name}: bad tail (${tail.kind}) left the stream ${served.inbound.status}`,
            )
          }
          tally.aborted++
          const err = reported.at(-1)
          const known = knownBug(err)
          if (known !== undefined) tally.known[known] = (tally.known[known] ?? 0) + 1
          else if (!(err instanceof RemoteProtocolError)) {
            throw new FuzzFailure(
              `${target.name}: bad tail (${tail.kind}) reported ${err?.name}: ${err?.message} (want RemoteProtocolError)` +
                (tail.kind === 'bad-frame' ? `\n  input: ${hex(tail.sample.bytes)}` : ''),
            )
          }
        } else if (served.inbound.status !== 'closed' && limited === 0) {
          throw new FuzzFailure(
            `${target.name}: clean stream ended ${served.inbound.status}: ${reported.at(-1)?.message}`,
          )
        }
        for (const err of reported) {
          if (
            err instanceof RemoteProtocolError ||
            err instanceof Injected ||
            err instanceof LocalProtocolError
          )
            continue
          if (err instanceof RateLimitedError || knownBug(err) !== undefined) continue
          if (target.expectedErrors?.(err)) continue
          throw new FuzzFailure(
            `${target.name}: server reported an unexpected ${err.name}: ${err.message}\n${err.stack}`,
          )
        }
      }
      await within(
        run(),
        STREAM_BOUND_MS,
        () => `${target.name} stream of ${good.length} frames + ${tail.kind}`,
      )
      if (violations.length > 0) throw new FuzzFailure(`${target.name}: ${violations.join('; ')}`)
    }),
    { numRuns: opts.numRuns, seed: opts.seed },
  )
  return tally
}

// ---------------------------------------------------------------------------
// Blob: one fetch per stream

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

function blobOf(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff
  return out
}

export interface BlobFuzzOptions extends RunOptions {
  /** Streams opened at once per run, at most (default 8). */
  parallel?: number
  rateLimits?: Partial<RateLimits>
}

/**
 * Streams carrying a generated blob-get (or junk), sometimes with more frames
 * behind it, against the real blob server holding a few blobs (one larger than
 * a chunk, one whose source lies about its size).
 */
export async function fuzzBlobServer(opts: BlobFuzzOptions): Promise<ServerTally> {
  const tally = newServerTally()
  const small = blobOf(100, 1)
  const big = blobOf(BLOB_CHUNK_BYTES + 3000, 2)
  const liar = blobOf(50, 3)
  const blobs = new Map<string, BlobSource>([
    [sha256(small), small],
    [sha256(big), big],
    [
      sha256(liar),
      {
        size: 60,
        chunks: (async function* () {
          yield liar
        })(),
      },
    ],
  ])
  const registrar = new FakeRegistrar()
  const reported: Error[] = []
  const violations: string[] = []
  await registerBlobProtocol(
    registrar,
    {
      async getBlob(_peer, hash) {
        tally.handled++
        if (!/^[0-9a-f]{64}$/.test(hash)) violations.push(`getBlob got an unvalidated hash ${hash}`)
        const b = blobs.get(hash)
        if (b === undefined || b instanceof Uint8Array) return b
        // A fresh lying source each time.
        return {
          size: 60,
          chunks: (async function* () {
            yield liar
          })(),
        }
      },
    },
    {
      timeoutMs: STREAM_BOUND_MS / 2,
      rateLimits: opts.rateLimits ?? NO_LIMITS,
      maxConcurrentPerPeer: 64,
      onError: (_peer, err) => reported.push(err),
    },
  )
  const get = (hash: string): Wire => ({ v: 1, t: 'blob-get', hash })
  const valid = fc.oneof(
    { weight: 6, arbitrary: validWire.blob },
    { weight: 3, arbitrary: fc.constant(get(sha256(small))) },
    { weight: 1, arbitrary: fc.constant(get(sha256(liar))) },
    // Over a chunk: costly, so rarer.
    { weight: 1, arbitrary: fc.constant(get(sha256(big))) },
  )
  const one = fc.tuple(
    samples(valid, ['blob-get']),
    fc.array(fc.uint8Array({ maxLength: 16 }), { maxLength: 2 }),
    tailKind,
  )
  const arb = fc.array(one, { minLength: 1, maxLength: opts.parallel ?? 8 })
  const codec = CODECS.blob
  await fc.assert(
    fc.asyncProperty(arb, fc.constantFrom(...PEERS), async (streams, peer) => {
      reported.length = 0
      violations.length = 0
      registrar.served.length = 0
      const fetchOne = async ([sample, extra, endWith]: [Sample, Uint8Array[], Tail['kind']]) => {
        const ok = decodes(codec, sample.bytes)
        const served = await registrar.connect(BLOB_PROTOCOL, peer)
        tally.streams++
        tally.messages += 1 + extra.length
        const io = framed(served.outbound, BLOB_MAX_MESSAGE_BYTES)
        const extraTail =
          !ok || endWith === 'none' || endWith === 'bad-frame'
            ? undefined
            : tailBytes({ kind: endWith } as Tail, BLOB_MAX_MESSAGE_BYTES)
        await sendAll(
          served.outbound,
          concat([frame(sample.bytes), ...extra.map(frame), ...(extraTail ? [extraTail] : [])]),
        )
        await served.outbound.close().catch(() => {})
        if (!ok) {
          await served.done
          tally.aborted++
          if (served.inbound.status !== 'reset' && served.inbound.status !== 'aborted')
            throw new FuzzFailure(
              `blob: a bad request left the stream ${served.inbound.status}\n  input: ${hex(sample.bytes)}`,
            )
          return
        }
        // The server reads one frame, then answers: header, chunks that hash to the name, end.
        const hash = (codec.decode(sample.bytes) as { hash: string }).hash
        const first = await io.read()
        if (first === null) throw new FuzzFailure('blob: no header')
        const header = blobReplyCodec.decode(first)
        tally.replies++
        if (header.t === 'error') {
          tally.errorReplies++
          await served.done
          return
        }
        if (header.t !== 'blob-header') throw new FuzzFailure(`blob: first reply ${header.t}`)
        const parts: Uint8Array[] = []
        let broken = false
        try {
          for (;;) {
            const f = await io.read()
            if (f === null) break
            const m = blobReplyCodec.decode(f)
            if (m.t !== 'blob-chunk') throw new FuzzFailure(`blob: ${m.t} after the header`)
            parts.push(m.data)
          }
        } catch (err) {
          if (err instanceof FuzzFailure) throw err
          broken = true
        }
        await served.done
        const data = concat(parts)
        if (hash === sha256(liar)) {
          // The lying source: the server must stop with its own error, never send a wrong blob as whole.
          if (!broken && data.byteLength === header.size)
            throw new FuzzFailure('blob: lying source served as complete')
          return
        }
        if (broken) throw new FuzzFailure(`blob: stream for ${hash} broke: ${reported.at(-1)?.message}`)
        if (header.found !== blobs.has(hash)) throw new FuzzFailure(`blob: found=${header.found} for ${hash}`)
        if (header.found && (data.byteLength !== header.size || sha256(data) !== hash)) {
          throw new FuzzFailure(`blob: ${hash} served ${data.byteLength} bytes that do not match`)
        }
      }
      await within(
        Promise.all(streams.map(fetchOne)),
        STREAM_BOUND_MS,
        () => `${streams.length} blob streams`,
      )
      for (const err of reported) {
        if (
          err instanceof RemoteProtocolError ||
          err instanceof LocalProtocolError ||
          err instanceof RateLimitedError
        )
          continue
        const k = knownBug(err)
        if (k !== undefined) {
          tally.known[k] = (tally.known[k] ?? 0) + 1
          continue
        }
        throw new FuzzFailure(`blob: server reported an unexpected ${err.name}: ${err.message}\n${err.stack}`)
      }
      if (violations.length > 0) throw new FuzzFailure(`blob: ${violations.join('; ')}`)
    }),
    { numRuns: opts.numRuns, seed: opts.seed },
  )
  return tally
}
