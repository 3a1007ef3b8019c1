/**
 * Frames over libp2p 3 message streams: varint-length-prefixed (lpStream from
 * @libp2p/utils) with a per-protocol maximum enforced before a body is
 * buffered, plus the narrow libp2p surface the handlers and clients use.
 */
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { GridnodeError, RemoteProtocolError } from '../errors.ts'
import { StreamBrokenError } from './errors.ts'

const MiB = 1024 * 1024

/** Who is on the other end of an inbound stream (a libp2p Connection satisfies it). */
export interface PeerConnection {
  remotePeer: { toString(): string }
}

export type ProtocolHandler = (stream: Stream, connection: PeerConnection) => void | Promise<void>

export interface HandlerLimits {
  maxInboundStreams?: number
  maxOutboundStreams?: number
}

/** The one libp2p method the handlers need; a libp2p node satisfies it, tests pass a fake. */
export interface ProtocolRegistrar {
  handle(protocol: string, handler: ProtocolHandler, options?: HandlerLimits): Promise<void>
}

/** Opens a fresh stream for one protocol to one peer: `(signal) => libp2p.dialProtocol(peer, protocol, { signal })`. */
export type OpenStream = (signal: AbortSignal) => Promise<Stream>

// ---------------------------------------------------------------------------
// Frames

export interface FramedStream {
  readonly stream: Stream
  /** The next frame's bytes, or null at a clean end of stream (between frames). */
  read(options?: { signal?: AbortSignal }): Promise<Uint8Array | null>
  /** Writes one frame; waits for `drain` when the stream asks for it. */
  write(bytes: Uint8Array, options?: { signal?: AbortSignal }): Promise<void>
}

/** Bytes a frame's length prefix takes (unsigned LEB128 varint). */
export function varintLength(n: number): number {
  let len = 1
  while (n >= 128) {
    n = Math.floor(n / 128)
    len++
  }
  return len
}

/** How many bytes we let lpStream buffer: a full frame plus room for what arrives behind it. */
export function readBufferBytes(maxMessageBytes: number): number {
  return Math.max(4 * MiB, maxMessageBytes + MiB)
}

function isNamed(err: unknown, ...names: string[]): boolean {
  return err instanceof Error && names.includes(err.name)
}

/**
 * Wraps a stream for framed reads and writes. `onFrameStart` runs when the
 * first byte of a frame arrives (used to time out slow senders, not idle ones).
 */
export function framed(stream: Stream, maxMessageBytes: number, onFrameStart?: () => void): FramedStream {
  const maxLengthLength = varintLength(maxMessageBytes)
  let started = false
  const lp = lpStream(stream, {
    maxDataLength: maxMessageBytes,
    maxLengthLength,
    maxBufferSize: readBufferBytes(maxMessageBytes),
    lengthDecoder(buf: { byteLength: number; get(index: number): number }): number {
      if (!started) {
        started = true
        onFrameStart?.()
      }
      let value = 0
      let scale = 1
      for (let i = 0; i < buf.byteLength; i++) {
        const byte = buf.get(i)
        value += (byte & 0x7f) * scale
        if ((byte & 0x80) === 0) return value
        scale *= 128
      }
      if (buf.byteLength >= maxLengthLength) {
        throw new RemoteProtocolError(`frame length prefix longer than ${maxLengthLength} bytes`)
      }
      throw new RangeError('incomplete varint') // lpStream reads another byte
    },
  })
  return {
    stream,
    async read(options) {
      started = false
      try {
        const list = await lp.read(options)
        return list.subarray()
      } catch (err) {
        if (!started && isNamed(err, 'UnexpectedEOFError')) return null
        throw classifyReadError(err, maxMessageBytes)
      }
    },
    async write(bytes, options) {
      await lp.write(bytes, options)
    },
  }
}

function classifyReadError(err: unknown, maxMessageBytes: number): unknown {
  if (err instanceof GridnodeError) return err
  if (isNamed(err, 'InvalidDataLengthError')) {
    return new RemoteProtocolError(`oversized frame: ${(err as Error).message} (max ${maxMessageBytes})`, {
      cause: err,
    })
  }
  if (isNamed(err, 'InvalidMessageLengthError', 'InvalidDataLengthLengthError')) {
    return new RemoteProtocolError(`bad frame length: ${(err as Error).message}`, { cause: err })
  }
  if (isNamed(err, 'StreamBufferError')) {
    return new RemoteProtocolError(`peer sent too much unread data: ${(err as Error).message}`, {
      cause: err,
    })
  }
  if (isNamed(err, 'UnexpectedEOFError')) {
    return new RemoteProtocolError('stream ended inside a frame', { cause: err })
  }
  if (isNamed(err, 'AbortError')) return err
  return new StreamBrokenError(`stream failed: ${(err as Error)?.message ?? String(err)}`, { cause: err })
}

export function abortStream(stream: Stream, err: unknown): void {
  try {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  } catch {
    // already gone
  }
}

export function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
