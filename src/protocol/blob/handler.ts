/** Serving and fetching blobs over `/gridnode/blob/1.0.0`. */
import { createHash } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { LocalProtocolError, RemoteProtocolError } from '../../errors.ts'
import { BlobTooLargeError, RateLimitedError, RemoteRequestError, RequestTimeoutError } from '../errors.ts'
import { toErrorReply } from '../message.ts'
import {
  DEFAULT_BLOB_CONCURRENCY_PER_PEER,
  DEFAULT_BLOB_REQUEST_TIMEOUT_MS,
  inboundStatsOf,
  RateLimiter,
} from '../rate-limit.ts'
import type { ServerOptions } from '../rpc.ts'
import {
  type FramedStream,
  framed,
  type HandlerLimits,
  type OpenStream,
  type ProtocolRegistrar,
} from '../stream.ts'
import {
  BLOB_CHUNK_BYTES,
  BLOB_FETCH_MAX_BYTES,
  BLOB_HASH_PATTERN,
  BLOB_MAX_BYTES,
  BLOB_MAX_MESSAGE_BYTES,
  BLOB_MAX_RANGE_BYTES,
  BLOB_PROTOCOL,
  type BlobServerMessage,
  blobReplyCodec,
  blobRequestCodec,
  pieceMapBytes,
} from './codec.ts'

/** Fetches run on their own streams; allow a few in parallel per connection. */
export const BLOB_STREAM_LIMITS: Required<HandlerLimits> = { maxInboundStreams: 16, maxOutboundStreams: 32 }
const DEFAULT_TIMEOUT_MS = 30_000

/** A blob to serve: its bytes, or its size and the bytes as a stream (e.g. read from disk). */
export type BlobSource = Uint8Array | { size: number; chunks: AsyncIterable<Uint8Array> }

export interface BlobCallbacks {
  /** The blob with this sha256 (hex), or undefined if we do not have it. */
  getBlob(peerId: string, hash: string): Promise<BlobSource | undefined>
  /**
   * `length` bytes of the blob from `offset` (fewer at its end; none for a
   * `have` query of length 0) and the whole blob's size, or undefined if we
   * do not have it whole. Absent: ranges are answered "not found".
   */
  getRange?(
    peerId: string,
    hash: string,
    offset: number,
    length: number,
  ): Promise<{ size: number; data: Uint8Array } | undefined>
  /**
   * Which pieces of the blob we hold (whole, or verified pieces of a fetch in progress), or
   * undefined if none. Absent: piece-map queries are answered "not found".
   */
  getPieces?(peerId: string, hash: string): Promise<PieceMap | undefined>
}

/** Pieces of a file a peer holds: bit i (byte i >> 3, top bit first) for piece i of `chunk` bytes. */
export interface PieceMap {
  size: number
  chunk: number
  have: Uint8Array
}

/** Whether piece `i` is set in a piece map's bitfield. */
export function hasPiece(have: Uint8Array, i: number): boolean {
  return i >= 0 && i >> 3 < have.byteLength && (have[i >> 3] & (0x80 >> (i & 7))) !== 0
}

/** A bitfield of `count` pieces with those in `held` set (all of them when `held` is 'all'). */
export function pieceBits(count: number, held: Iterable<number> | 'all'): Uint8Array {
  const have = new Uint8Array(Math.ceil(Math.max(1, count) / 8))
  if (held === 'all') for (let i = 0; i < count; i++) have[i >> 3] |= 0x80 >> (i & 7)
  else for (const i of held) if (i >= 0 && i < count) have[i >> 3] |= 0x80 >> (i & 7)
  return have
}

function abort(stream: Stream, err: unknown): void {
  stream.abort(err instanceof Error ? err : new Error(String(err)))
}

/** Aborts `stream` unless `touch()` is called at least every `ms` (the first wait may be shorter). */
function inactivityGuard(
  stream: Stream,
  ms: number,
  what: string,
  firstMs = ms,
): { touch(): void; stop(): void; fired(): Error | undefined } {
  let timer: NodeJS.Timeout | undefined
  let fired: Error | undefined
  const arm = (wait: number) => {
    clearTimeout(timer)
    timer = setTimeout(() => {
      fired = new RequestTimeoutError(`${what}: no progress for ${wait} ms`)
      abort(stream, fired)
    }, wait)
  }
  arm(firstMs)
  return { touch: () => arm(ms), stop: () => clearTimeout(timer), fired: () => fired }
}

async function* chunksOf(source: BlobSource): AsyncIterable<Uint8Array> {
  const pieces = source instanceof Uint8Array ? [source] : source.chunks
  for await (const piece of pieces) {
    for (let at = 0; at < piece.byteLength; at += BLOB_CHUNK_BYTES) {
      yield piece.subarray(at, Math.min(at + BLOB_CHUNK_BYTES, piece.byteLength))
    }
  }
}

async function sendBlob(io: FramedStream, source: BlobSource, touch: () => void): Promise<void> {
  const size = source instanceof Uint8Array ? source.byteLength : source.size
  if (size > BLOB_MAX_BYTES) throw new LocalProtocolError(`blob of ${size} bytes exceeds ${BLOB_MAX_BYTES}`)
  await io.write(blobReplyCodec.encode({ t: 'blob-header', found: true, size }))
  let sent = 0
  for await (const data of chunksOf(source)) {
    if (data.byteLength === 0) continue
    sent += data.byteLength
    if (sent > size) throw new LocalProtocolError(`blob source yielded more than its size ${size}`)
    await io.write(blobReplyCodec.encode({ t: 'blob-chunk', data }))
    touch()
  }
  if (sent !== size) throw new LocalProtocolError(`blob source yielded ${sent} of its ${size} bytes`)
}

async function serveRange(
  io: FramedStream,
  ctx: BlobServeContext,
  hash: string,
  offset: number,
  length: number,
  touch: () => void,
): Promise<void> {
  let found: { size: number; data: Uint8Array } | undefined
  try {
    found = await ctx.callbacks.getRange?.(ctx.peerId, hash, offset, length)
  } catch (err) {
    ctx.report(err)
    await io.write(blobReplyCodec.encode(toErrorReply(err)))
    return
  }
  touch()
  if (found === undefined) {
    await io.write(blobReplyCodec.encode({ t: 'blob-header', found: false, size: 0 }))
    return
  }
  await io.write(blobReplyCodec.encode({ t: 'blob-header', found: true, size: found.size }))
  for (let at = 0; at < found.data.byteLength; at += BLOB_CHUNK_BYTES) {
    const data = found.data.subarray(at, Math.min(at + BLOB_CHUNK_BYTES, found.data.byteLength))
    await io.write(blobReplyCodec.encode({ t: 'blob-chunk', data }))
    touch()
  }
}

async function servePieces(io: FramedStream, ctx: BlobServeContext, hash: string): Promise<void> {
  let map: PieceMap | undefined
  try {
    map = await ctx.callbacks.getPieces?.(ctx.peerId, hash)
  } catch (err) {
    ctx.report(err)
    await io.write(blobReplyCodec.encode(toErrorReply(err)))
    return
  }
  if (map === undefined || map.have.byteLength !== pieceMapBytes(map.size, map.chunk)) {
    await io.write(blobReplyCodec.encode({ t: 'blob-header', found: false, size: 0 }))
    return
  }
  await io.write(blobReplyCodec.encode({ t: 'blob-pieces', ...map }))
}

interface BlobServeContext {
  peerId: string
  callbacks: BlobCallbacks
  timeoutMs: number
  requestTimeoutMs: number
  /** Refuses the fetch (returns the error to reply with) or admits it and returns undefined. */
  admit(): RateLimitedError | undefined
  report(err: unknown): void
}

async function serveBlob(stream: Stream, ctx: BlobServeContext): Promise<void> {
  const guard = inactivityGuard(stream, ctx.timeoutMs, BLOB_PROTOCOL, ctx.requestTimeoutMs)
  try {
    const io = framed(stream, BLOB_MAX_MESSAGE_BYTES)
    const frame = await io.read()
    if (frame === null) {
      await stream.close()
      return
    }
    const req = blobRequestCodec.decode(frame)
    guard.touch()
    const refused = ctx.admit()
    if (refused !== undefined) {
      await io.write(blobReplyCodec.encode(toErrorReply(refused)))
      await stream.close()
      return
    }
    if (req.pieces === true) {
      await servePieces(io, ctx, req.hash)
      await stream.close()
      return
    }
    if (req.offset !== undefined || req.length !== undefined) {
      await serveRange(io, ctx, req.hash, req.offset ?? 0, req.length ?? BLOB_MAX_RANGE_BYTES, guard.touch)
      await stream.close()
      return
    }
    let source: BlobSource | undefined
    try {
      source = await ctx.callbacks.getBlob(ctx.peerId, req.hash)
    } catch (err) {
      ctx.report(err)
      await io.write(blobReplyCodec.encode(toErrorReply(err)))
      await stream.close()
      return
    }
    guard.touch()
    if (source === undefined)
      await io.write(blobReplyCodec.encode({ t: 'blob-header', found: false, size: 0 }))
    else await sendBlob(io, source, guard.touch)
    await stream.close()
  } catch (err) {
    throw guard.fired() ?? err
  } finally {
    guard.stop()
  }
}

export interface BlobServerOptions extends ServerOptions {
  /** Fetches one peer may have in progress at once. Default 8. */
  maxConcurrentPerPeer?: number
  /** Time for a new stream to bring its request (ms). Default 10 s. */
  requestTimeoutMs?: number
}

export function registerBlobProtocol(
  registrar: ProtocolRegistrar,
  callbacks: BlobCallbacks,
  options: BlobServerOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const requestTimeoutMs = Math.min(options.requestTimeoutMs ?? DEFAULT_BLOB_REQUEST_TIMEOUT_MS, timeoutMs)
  const maxConcurrent = options.maxConcurrentPerPeer ?? DEFAULT_BLOB_CONCURRENCY_PER_PEER
  const limiter = options.limiter ?? new RateLimiter(options.rateLimits, options.clock)
  const stats = options.stats ?? inboundStatsOf(registrar)
  const inProgress = new Map<string, number>()
  return registrar.handle(
    BLOB_PROTOCOL,
    async (stream, connection) => {
      const peerId = connection.remotePeer.toString()
      const report = (err: unknown) => {
        try {
          options.onError?.(peerId, err instanceof Error ? err : new Error(String(err)))
        } catch {
          // A failing error callback must not fail the handler.
        }
      }
      const counters = stats.kind('blob-get')
      let holding = false
      const admit = (): RateLimitedError | undefined => {
        counters.received++
        const running = inProgress.get(peerId) ?? 0
        let why: string | undefined
        if (running >= maxConcurrent) why = `${running} fetches already in progress (max ${maxConcurrent})`
        else if (!limiter.take(peerId, 'blob-get')) why = 'fetches over the rate limit'
        if (why !== undefined) {
          counters.limited++
          return new RateLimitedError(`${BLOB_PROTOCOL}: ${why}; try later`)
        }
        inProgress.set(peerId, running + 1)
        holding = true
        return undefined
      }
      try {
        await serveBlob(stream, { peerId, callbacks, timeoutMs, requestTimeoutMs, admit, report })
      } catch (err) {
        abort(stream, err)
        stats.streamsClosed[
          err instanceof RemoteProtocolError
            ? 'malformed'
            : err instanceof RequestTimeoutError
              ? 'timeout'
              : 'broken'
        ]++
        report(err)
      } finally {
        if (holding) {
          const left = (inProgress.get(peerId) ?? 1) - 1
          if (left > 0) inProgress.set(peerId, left)
          else inProgress.delete(peerId)
        }
      }
    },
    { ...BLOB_STREAM_LIMITS, ...options.limits },
  )
}

export interface FetchBlobOptions {
  signal?: AbortSignal
  /** Abort when no frame arrives for this long (ms). Default 30 s. */
  timeoutMs?: number
  /** Refuse blobs larger than this (at most BLOB_MAX_BYTES). Default BLOB_FETCH_MAX_BYTES (64 MiB). */
  maxBytes?: number
  /** Bounds fetches in progress; default the process-wide `blobFetchSlots`. */
  slots?: Semaphore
}

/** Counts permits; waiters are served in order. */
export class Semaphore {
  private free: number
  private readonly waiters: Array<() => void> = []

  constructor(permits: number) {
    this.free = permits
  }

  get available(): number {
    return this.free
  }

  get waiting(): number {
    return this.waiters.length
  }

  /** Waits for a permit (or rejects when `signal` aborts first); call the returned function once to give it back. */
  async acquire(signal?: AbortSignal): Promise<() => void> {
    signal?.throwIfAborted()
    if (this.free > 0) {
      this.free--
    } else {
      await new Promise<void>((resolve, reject) => {
        const grant = () => {
          signal?.removeEventListener('abort', onAbort)
          resolve()
        }
        const onAbort = () => {
          const i = this.waiters.indexOf(grant)
          if (i >= 0) this.waiters.splice(i, 1)
          reject(signal?.reason)
        }
        this.waiters.push(grant)
        signal?.addEventListener('abort', onAbort, { once: true })
      })
    }
    let released = false
    return () => {
      if (released) return
      released = true
      const next = this.waiters.shift()
      if (next) next()
      else this.free++
    }
  }
}

/** Outbound blob fetches in progress at once, per process (each may hold up to its maxBytes). */
export const MAX_CONCURRENT_BLOB_FETCHES = 4
export const blobFetchSlots = new Semaphore(MAX_CONCURRENT_BLOB_FETCHES)

async function readMessage(io: FramedStream): Promise<BlobServerMessage> {
  const frame = await io.read()
  if (frame === null) throw new RemoteProtocolError(`${BLOB_PROTOCOL}: stream ended before the blob did`)
  const msg = blobReplyCodec.decode(frame)
  if (msg.t === 'error') throw new RemoteRequestError(msg.code, `${BLOB_PROTOCOL}: ${msg.message}`)
  return msg
}

/**
 * Reads the header and the chunks. Memory follows the bytes that arrived,
 * never the size the header claims: a peer announcing a huge blob and
 * sending nothing costs nothing.
 */
async function receiveBlob(io: FramedStream, hash: string, maxBytes: number, touch: () => void) {
  const header = await readMessage(io)
  if (header.t !== 'blob-header') throw new RemoteProtocolError(`${BLOB_PROTOCOL}: expected blob-header`)
  touch()
  if (!header.found) return undefined
  if (header.size > maxBytes)
    throw new BlobTooLargeError(`blob ${hash} has ${header.size} bytes (max ${maxBytes})`)
  const chunks: Uint8Array[] = []
  const sha = createHash('sha256')
  let received = 0
  while (received < header.size) {
    const chunk = await readMessage(io)
    if (chunk.t !== 'blob-chunk') throw new RemoteProtocolError(`${BLOB_PROTOCOL}: expected blob-chunk`)
    if (received + chunk.data.byteLength > header.size) {
      throw new RemoteProtocolError(`${BLOB_PROTOCOL}: more bytes than the header's size ${header.size}`)
    }
    chunks.push(chunk.data)
    sha.update(chunk.data)
    received += chunk.data.byteLength
    touch()
  }
  if (sha.digest('hex') !== hash)
    throw new RemoteProtocolError(`${BLOB_PROTOCOL}: blob does not match its hash`)
  if (chunks.length === 1) return chunks[0]
  const out = new Uint8Array(received)
  let at = 0
  for (const c of chunks) {
    out.set(c, at)
    at += c.byteLength
  }
  return out
}

/**
 * Fetches the blob with this sha256 (64 lowercase hex) over a fresh stream.
 * Resolves to its bytes, verified, or undefined if the peer does not have it.
 * Throws RemoteProtocolError on a bad stream or hash mismatch,
 * RemoteRequestError if the peer failed, BlobTooLargeError over `maxBytes`.
 * At most `slots` fetches run at once (default MAX_CONCURRENT_BLOB_FETCHES per process).
 */
export async function fetchBlob(
  open: OpenStream,
  hash: string,
  options: FetchBlobOptions = {},
): Promise<Uint8Array | undefined> {
  if (!BLOB_HASH_PATTERN.test(hash)) throw new LocalProtocolError(`not a blob hash: ${hash.slice(0, 80)}`)
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const maxBytes = Math.min(options.maxBytes ?? BLOB_FETCH_MAX_BYTES, BLOB_MAX_BYTES)
  const release = await (options.slots ?? blobFetchSlots).acquire(options.signal)
  try {
    return await fetchOne(open, hash, timeoutMs, maxBytes, options.signal)
  } finally {
    release()
  }
}

async function fetchOne(
  open: OpenStream,
  hash: string,
  timeoutMs: number,
  maxBytes: number,
  signal: AbortSignal | undefined,
): Promise<Uint8Array | undefined> {
  const openSignal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])])
  const stream = await open(openSignal)
  const guard = inactivityGuard(stream, timeoutMs, BLOB_PROTOCOL)
  const onAbort = () => abort(stream, signal?.reason)
  signal?.addEventListener('abort', onAbort, { once: true })
  try {
    signal?.throwIfAborted()
    const io = framed(stream, BLOB_MAX_MESSAGE_BYTES)
    await io.write(blobRequestCodec.encode({ t: 'blob-get', hash }))
    await stream.close()
    const blob = await receiveBlob(io, hash, maxBytes, guard.touch)
    if ((await io.read()) !== null) throw new RemoteProtocolError(`${BLOB_PROTOCOL}: data after the blob`)
    return blob
  } catch (err) {
    abort(stream, err)
    if (signal?.aborted) throw signal.reason
    throw guard.fired() ?? err
  } finally {
    guard.stop()
    signal?.removeEventListener('abort', onAbort)
  }
}

/**
 * Fetches `length` bytes of a blob from `offset` (fewer at its end) over a
 * fresh stream: the bytes and the whole blob's size, or undefined if the peer
 * does not have the blob whole. `length` 0 is a `have` query (size only).
 * The caller verifies the bytes (each range against its chunk hash).
 * Shares the process-wide fetch slots unless given others.
 */
export async function fetchBlobRange(
  open: OpenStream,
  hash: string,
  offset: number,
  length: number,
  options: Omit<FetchBlobOptions, 'maxBytes'> = {},
): Promise<{ size: number; data: Uint8Array } | undefined> {
  if (!BLOB_HASH_PATTERN.test(hash)) throw new LocalProtocolError(`not a blob hash: ${hash.slice(0, 80)}`)
  if (length > BLOB_MAX_RANGE_BYTES) throw new LocalProtocolError(`range of ${length} bytes is too long`)
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const release = await (options.slots ?? blobFetchSlots).acquire(options.signal)
  const signal = options.signal
  try {
    const openSignal = AbortSignal.any([AbortSignal.timeout(timeoutMs), ...(signal ? [signal] : [])])
    const stream = await open(openSignal)
    const guard = inactivityGuard(stream, timeoutMs, BLOB_PROTOCOL)
    const onAbort = () => abort(stream, signal?.reason)
    signal?.addEventListener('abort', onAbort, { once: true })
    try {
      signal?.throwIfAborted()
      const io = framed(stream, BLOB_MAX_MESSAGE_BYTES)
      await io.write(blobRequestCodec.encode({ t: 'blob-get', hash, offset, length }))
      await stream.close()
      const header = await readMessage(io)
      if (header.t !== 'blob-header') throw new RemoteProtocolError(`${BLOB_PROTOCOL}: expected blob-header`)
      guard.touch()
      if (!header.found) return undefined
      const want = Math.max(0, Math.min(length, header.size - offset))
      const data = new Uint8Array(want)
      let received = 0
      while (received < want) {
        const chunk = await readMessage(io)
        if (chunk.t !== 'blob-chunk') throw new RemoteProtocolError(`${BLOB_PROTOCOL}: expected blob-chunk`)
        if (received + chunk.data.byteLength > want)
          throw new RemoteProtocolError(`${BLOB_PROTOCOL}: more bytes than the range asked`)
        data.set(chunk.data, received)
        received += chunk.data.byteLength
        guard.touch()
      }
      if ((await io.read()) !== null) throw new RemoteProtocolError(`${BLOB_PROTOCOL}: data after the range`)
      return { size: header.size, data }
    } catch (err) {
      abort(stream, err)
      if (signal?.aborted) throw signal.reason
      throw guard.fired() ?? err
    } finally {
      guard.stop()
      signal?.removeEventListener('abort', onAbort)
    }
  } finally {
    release()
  }
}

/**
 * Asks a peer which pieces of a file it holds (a piece-map query): its map, or undefined if it
 * holds none. A peer older than the query resets the stream (the caller may fall back to a
 * `have` query). Takes no fetch slot (the answer is small).
 */
export async function fetchPieceMap(
  open: OpenStream,
  hash: string,
  options: { signal?: AbortSignal; timeoutMs?: number } = {},
): Promise<PieceMap | undefined> {
  if (!BLOB_HASH_PATTERN.test(hash)) throw new LocalProtocolError(`not a blob hash: ${hash.slice(0, 80)}`)
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const signal = AbortSignal.any([
    AbortSignal.timeout(timeoutMs),
    ...(options.signal ? [options.signal] : []),
  ])
  const stream = await open(signal)
  const onAbort = () => abort(stream, signal.reason)
  signal.addEventListener('abort', onAbort, { once: true })
  try {
    signal.throwIfAborted()
    const io = framed(stream, BLOB_MAX_MESSAGE_BYTES)
    await io.write(blobRequestCodec.encode({ t: 'blob-get', hash, pieces: true }))
    await stream.close()
    const msg = await readMessage(io)
    if (msg.t === 'blob-header' && !msg.found) return undefined
    if (msg.t !== 'blob-pieces') throw new RemoteProtocolError(`${BLOB_PROTOCOL}: expected blob-pieces`)
    if ((await io.read()) !== null)
      throw new RemoteProtocolError(`${BLOB_PROTOCOL}: data after the piece map`)
    return { size: msg.size, chunk: msg.chunk, have: msg.have }
  } catch (err) {
    abort(stream, err)
    if (signal.aborted) throw signal.reason
    throw err
  } finally {
    signal.removeEventListener('abort', onAbort)
  }
}
