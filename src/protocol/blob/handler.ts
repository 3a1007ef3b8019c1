/** Serving and fetching blobs over `/gridnode/blob/1.0.0`. */
import { createHash } from 'node:crypto'
import type { Stream } from '@libp2p/interface'
import { LocalProtocolError, RemoteProtocolError } from '../../errors.ts'
import { BlobTooLargeError, RemoteRequestError, RequestTimeoutError } from '../errors.ts'
import { toErrorReply } from '../message.ts'
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
  BLOB_HASH_PATTERN,
  BLOB_MAX_BYTES,
  BLOB_MAX_MESSAGE_BYTES,
  BLOB_PROTOCOL,
  type BlobServerMessage,
  blobReplyCodec,
  blobRequestCodec,
} from './codec.ts'

/** Fetches run on their own streams; allow a few in parallel per connection. */
export const BLOB_STREAM_LIMITS: Required<HandlerLimits> = { maxInboundStreams: 16, maxOutboundStreams: 32 }
const DEFAULT_TIMEOUT_MS = 30_000

/** A blob to serve: its bytes, or its size and the bytes as a stream (e.g. read from disk). */
export type BlobSource = Uint8Array | { size: number; chunks: AsyncIterable<Uint8Array> }

export interface BlobCallbacks {
  /** The blob with this sha256 (hex), or undefined if we do not have it. */
  getBlob(peerId: string, hash: string): Promise<BlobSource | undefined>
}

function abort(stream: Stream, err: unknown): void {
  stream.abort(err instanceof Error ? err : new Error(String(err)))
}

/** Aborts `stream` unless `touch()` is called at least every `ms`. */
function inactivityGuard(stream: Stream, ms: number, what: string): { touch(): void; stop(): void } {
  let timer: NodeJS.Timeout | undefined
  const touch = () => {
    clearTimeout(timer)
    timer = setTimeout(() => abort(stream, new RequestTimeoutError(`${what}: no progress for ${ms} ms`)), ms)
  }
  touch()
  return { touch, stop: () => clearTimeout(timer) }
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

async function serveBlob(
  stream: Stream,
  peerId: string,
  callbacks: BlobCallbacks,
  timeoutMs: number,
  report: (err: unknown) => void,
): Promise<void> {
  const guard = inactivityGuard(stream, timeoutMs, BLOB_PROTOCOL)
  try {
    const io = framed(stream, BLOB_MAX_MESSAGE_BYTES)
    const frame = await io.read()
    if (frame === null) {
      await stream.close()
      return
    }
    const req = blobRequestCodec.decode(frame)
    let source: BlobSource | undefined
    try {
      source = await callbacks.getBlob(peerId, req.hash)
    } catch (err) {
      report(err)
      await io.write(blobReplyCodec.encode(toErrorReply(err)))
      await stream.close()
      return
    }
    guard.touch()
    if (source === undefined)
      await io.write(blobReplyCodec.encode({ t: 'blob-header', found: false, size: 0 }))
    else await sendBlob(io, source, guard.touch)
    await stream.close()
  } finally {
    guard.stop()
  }
}

export interface BlobServerOptions extends ServerOptions {}

export function registerBlobProtocol(
  registrar: ProtocolRegistrar,
  callbacks: BlobCallbacks,
  options: BlobServerOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  return registrar.handle(
    BLOB_PROTOCOL,
    async (stream, connection) => {
      const peerId = connection.remotePeer.toString()
      const report = (err: unknown) =>
        options.onError?.(peerId, err instanceof Error ? err : new Error(String(err)))
      try {
        await serveBlob(stream, peerId, callbacks, timeoutMs, report)
      } catch (err) {
        abort(stream, err)
        report(err)
      }
    },
    { ...BLOB_STREAM_LIMITS, ...options.limits },
  )
}

export interface FetchBlobOptions {
  signal?: AbortSignal
  /** Abort when no frame arrives for this long (ms). Default 30 s. */
  timeoutMs?: number
  /** Refuse blobs larger than this. Default BLOB_MAX_BYTES (256 MiB). */
  maxBytes?: number
}

async function readMessage(io: FramedStream): Promise<BlobServerMessage> {
  const frame = await io.read()
  if (frame === null) throw new RemoteProtocolError(`${BLOB_PROTOCOL}: stream ended before the blob did`)
  const msg = blobReplyCodec.decode(frame)
  if (msg.t === 'error') throw new RemoteRequestError(msg.code, `${BLOB_PROTOCOL}: ${msg.message}`)
  return msg
}

async function receiveBlob(io: FramedStream, hash: string, maxBytes: number, touch: () => void) {
  const header = await readMessage(io)
  if (header.t !== 'blob-header') throw new RemoteProtocolError(`${BLOB_PROTOCOL}: expected blob-header`)
  touch()
  if (!header.found) return undefined
  if (header.size > maxBytes)
    throw new BlobTooLargeError(`blob ${hash} has ${header.size} bytes (max ${maxBytes})`)
  const out = new Uint8Array(header.size)
  const sha = createHash('sha256')
  let received = 0
  while (received < header.size) {
    const chunk = await readMessage(io)
    if (chunk.t !== 'blob-chunk') throw new RemoteProtocolError(`${BLOB_PROTOCOL}: expected blob-chunk`)
    if (received + chunk.data.byteLength > header.size) {
      throw new RemoteProtocolError(`${BLOB_PROTOCOL}: more bytes than the header's size ${header.size}`)
    }
    out.set(chunk.data, received)
    sha.update(chunk.data)
    received += chunk.data.byteLength
    touch()
  }
  if (sha.digest('hex') !== hash)
    throw new RemoteProtocolError(`${BLOB_PROTOCOL}: blob does not match its hash`)
  return out
}

/**
 * Fetches the blob with this sha256 (64 lowercase hex) over a fresh stream.
 * Resolves to its bytes, verified, or undefined if the peer does not have it.
 * Throws RemoteProtocolError on a bad stream or hash mismatch,
 * RemoteRequestError if the peer failed, BlobTooLargeError over `maxBytes`.
 */
export async function fetchBlob(
  open: OpenStream,
  hash: string,
  options: FetchBlobOptions = {},
): Promise<Uint8Array | undefined> {
  if (!BLOB_HASH_PATTERN.test(hash)) throw new LocalProtocolError(`not a blob hash: ${hash.slice(0, 80)}`)
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS
  const maxBytes = Math.min(options.maxBytes ?? BLOB_MAX_BYTES, BLOB_MAX_BYTES)
  const openSignal = AbortSignal.any([
    AbortSignal.timeout(timeoutMs),
    ...(options.signal ? [options.signal] : []),
  ])
  const stream = await open(openSignal)
  const guard = inactivityGuard(stream, timeoutMs, BLOB_PROTOCOL)
  const onAbort = () => abort(stream, options.signal?.reason)
  options.signal?.addEventListener('abort', onAbort, { once: true })
  try {
    options.signal?.throwIfAborted()
    const io = framed(stream, BLOB_MAX_MESSAGE_BYTES)
    await io.write(blobRequestCodec.encode({ t: 'blob-get', hash }))
    await stream.close()
    const blob = await receiveBlob(io, hash, maxBytes, guard.touch)
    if ((await io.read()) !== null) throw new RemoteProtocolError(`${BLOB_PROTOCOL}: data after the blob`)
    return blob
  } catch (err) {
    abort(stream, err)
    if (options.signal?.aborted) throw options.signal.reason
    throw err
  } finally {
    guard.stop()
    options.signal?.removeEventListener('abort', onAbort)
  }
}
