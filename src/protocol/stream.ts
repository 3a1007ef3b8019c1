/**
 * Framing and request/response plumbing over libp2p 3 message streams.
 *
 * Frames are varint-length-prefixed (lpStream from @libp2p/utils) with a
 * per-protocol maximum that is enforced before the body is buffered.
 * `serveRequests` is the server loop (pipelined requests on one long-lived
 * stream, answered in order); `RequestClient` is the client (one lazily opened
 * stream per peer and protocol, pipelining, FIFO replies, reopening after
 * failures). Neither knows any message schema: codecs come in as functions.
 */
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { GridnodeError, RemoteProtocolError } from '../errors.ts'
import { ClientClosedError, RemoteRequestError, RequestTimeoutError, StreamBrokenError } from './errors.ts'
import type { ErrorReply } from './message.ts'

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

function abortStream(stream: Stream, err: unknown): void {
  try {
    stream.abort(err instanceof Error ? err : new Error(String(err)))
  } catch {
    // already gone
  }
}

function asError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}

// ---------------------------------------------------------------------------
// Server

export interface ServeOptions<Req, Rep> {
  /** For error messages, e.g. the protocol id. */
  name: string
  maxMessageBytes: number
  /** Throws RemoteProtocolError on a bad request. */
  decode(bytes: Uint8Array): Req
  encode(reply: Rep | ErrorReply): Uint8Array
  /**
   * Answers one request. Throwing RemoteProtocolError aborts the stream (the
   * request was well-formed but unacceptable); anything else is answered with
   * an error reply and reported through `onError`, and the stream goes on.
   */
  handle(req: Req): Promise<Rep>
  /** Maps a failure of `handle` to the error reply sent in its place. */
  errorReply(err: unknown): ErrorReply
  /** Time allowed to receive one frame once its first byte arrived, and to handle and write one reply. */
  timeoutMs: number
  /** Every failure ends up here (the loop itself never throws). */
  onError?(err: Error): void
  /**
   * Called once per reply that `handle` produced: without `err` once the
   * reply was handed to the stream, with `err` if it could not be (custody of
   * a steal's batch stays with the victim then).
   */
  afterWrite?(req: Req, reply: Rep, err?: Error): void
}

/**
 * Serves framed requests on one stream, one after another, until the peer
 * closes its end; then closes ours. A malformed or oversized frame, a timeout
 * or a broken stream aborts this stream only and is reported to `onError`.
 * The returned promise always resolves.
 */
export async function serveRequests<Req, Rep>(stream: Stream, opts: ServeOptions<Req, Rep>): Promise<void> {
  let frameTimer: NodeJS.Timeout | undefined
  const io = framed(stream, opts.maxMessageBytes, () => {
    frameTimer = setTimeout(() => {
      abortStream(
        stream,
        new RequestTimeoutError(`${opts.name}: frame not received within ${opts.timeoutMs} ms`),
      )
    }, opts.timeoutMs)
  })
  try {
    while (true) {
      const frame = await io.read()
      clearTimeout(frameTimer)
      if (frame === null) break
      await answer(io, opts, opts.decode(frame))
    }
    await stream.close()
  } catch (err) {
    abortStream(stream, err)
    opts.onError?.(asError(err))
  } finally {
    clearTimeout(frameTimer)
  }
}

function withTimeout<T>(promise: Promise<T>, ms: number, makeError: () => Error): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(makeError()), ms)
  })
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer))
}

/** Runs a callback of the caller's; its failure is reported, never thrown into the loop. */
function safely<Req, Rep>(opts: ServeOptions<Req, Rep>, fn: () => void): void {
  try {
    fn()
  } catch (err) {
    opts.onError?.(asError(err))
  }
}

async function answer<Req, Rep>(io: FramedStream, opts: ServeOptions<Req, Rep>, req: Req): Promise<void> {
  const write = (bytes: Uint8Array) =>
    withTimeout(
      io.write(bytes),
      opts.timeoutMs,
      () => new RequestTimeoutError(`${opts.name}: reply not written within ${opts.timeoutMs} ms`),
    )
  const afterWrite = (reply: Rep, err?: Error) => safely(opts, () => opts.afterWrite?.(req, reply, err))
  const handled = (async () => opts.handle(req))()
  let reply: Rep
  try {
    reply = await withTimeout(
      handled,
      opts.timeoutMs,
      () => new RequestTimeoutError(`${opts.name}: no reply within ${opts.timeoutMs} ms`),
    )
  } catch (err) {
    if (err instanceof RequestTimeoutError) {
      // The stream is about to be aborted: a reply that comes later is never written.
      handled.then(
        (late) => afterWrite(late, err),
        () => {},
      )
      throw err
    }
    if (err instanceof RemoteProtocolError) throw err
    opts.onError?.(asError(err))
    await write(opts.encode(opts.errorReply(err)))
    return
  }
  let bytes: Uint8Array
  try {
    bytes = opts.encode(reply)
  } catch (err) {
    afterWrite(reply, asError(err))
    opts.onError?.(asError(err))
    await write(opts.encode(opts.errorReply(err)))
    return
  }
  try {
    await write(bytes)
  } catch (err) {
    afterWrite(reply, asError(err))
    throw err
  }
  afterWrite(reply)
}

// ---------------------------------------------------------------------------
// Client

export interface RequestClientOptions<Req extends { t: string }, Rep extends { t: string }> {
  name: string
  open: OpenStream
  maxMessageBytes: number
  encode(req: Req): Uint8Array
  /** Decodes a reply frame (throws RemoteProtocolError on a bad one). */
  decode(bytes: Uint8Array): Rep | ErrorReply
  /** Whether `rep` is the right kind of answer to `req`; a wrong one breaks the stream. */
  matches(req: Req, rep: Rep): boolean
  /** Default per-request time limit (ms); on expiry the stream is aborted. Default 30 s. */
  timeoutMs?: number
  /** Time limit for opening a stream (dial and protocol negotiation). Default 10 s. */
  openTimeoutMs?: number
  /** Outstanding requests per stream. Default 32. */
  maxPending?: number
  /** Bytes of outstanding requests per stream (bounds the server's read buffer). Default maxMessageBytes. */
  maxInFlightBytes?: number
  /** Close the stream after this long with nothing outstanding; 0 = keep it. Default 30 s. */
  idleCloseMs?: number
  /**
   * A reply to a request whose caller gave up (its signal aborted) still
   * arrived. For steals this is a batch now in our custody: do not drop it.
   */
  onLateReply?(req: Req, rep: Rep): void
}

export interface RequestOptions {
  /** Aborting gives up on this request only; its reply, if it comes, goes to onLateReply. */
  signal?: AbortSignal
  timeoutMs?: number
}

interface Pending<Req, Rep> {
  req: Req
  size: number
  settled: boolean
  resolve(rep: Rep): void
  reject(err: unknown): void
  timer?: NodeJS.Timeout
}

interface Conn<Req, Rep> {
  stream: Stream
  io: FramedStream
  pending: Pending<Req, Rep>[]
  inFlight: number
  dead: boolean
  writes: Promise<void>
  idleTimer?: NodeJS.Timeout
  room: PromiseWithResolvers<void>
}

function raceSignal<T>(promise: Promise<T>, signal?: AbortSignal): Promise<T> {
  if (signal === undefined) return promise
  if (signal.aborted) return Promise.reject(signal.reason)
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason)
    signal.addEventListener('abort', onAbort, { once: true })
    promise.then(
      (v) => {
        signal.removeEventListener('abort', onAbort)
        resolve(v)
      },
      (err) => {
        signal.removeEventListener('abort', onAbort)
        reject(err)
      },
    )
  })
}

/**
 * Sends requests over one long-lived stream to one peer for one protocol,
 * opened on first use and reopened after it breaks or idles out. Requests may
 * be pipelined; replies come back in order.
 */
export class RequestClient<Req extends { t: string }, Rep extends { t: string }> {
  private readonly opts: Required<Omit<RequestClientOptions<Req, Rep>, 'onLateReply'>> &
    Pick<RequestClientOptions<Req, Rep>, 'onLateReply'>
  private conn?: Conn<Req, Rep>
  private opening?: Promise<Conn<Req, Rep>>
  private readonly closer = new AbortController()

  constructor(opts: RequestClientOptions<Req, Rep>) {
    this.opts = {
      timeoutMs: 30_000,
      openTimeoutMs: 10_000,
      maxPending: 32,
      maxInFlightBytes: opts.maxMessageBytes,
      idleCloseMs: 30_000,
      ...opts,
    }
  }

  /** Requests currently awaiting a reply on the open stream. */
  get outstanding(): number {
    return this.conn?.pending.length ?? 0
  }

  async request(req: Req, options: RequestOptions = {}): Promise<Rep> {
    const { signal } = options
    signal?.throwIfAborted()
    if (this.closer.signal.aborted) throw new ClientClosedError()
    const bytes = this.opts.encode(req)
    const size = bytes.byteLength + varintLength(bytes.byteLength)
    while (true) {
      if (this.closer.signal.aborted) throw new ClientClosedError()
      const conn = await this.connection(signal)
      if (conn.dead) continue
      if (this.hasRoom(conn, size)) return this.send(conn, req, bytes, size, options)
      await raceSignal(conn.room.promise, signal)
    }
  }

  /**
   * Stops the client: later requests fail. With nothing outstanding the stream
   * is closed gracefully; otherwise it is aborted and what is outstanding fails.
   */
  close(): void {
    const err = new ClientClosedError()
    this.closer.abort(err)
    const conn = this.conn
    if (conn === undefined) return
    if (conn.pending.length === 0) this.retire(conn)
    else this.fail(conn, err)
  }

  private hasRoom(conn: Conn<Req, Rep>, size: number): boolean {
    if (conn.pending.length >= this.opts.maxPending) return false
    return conn.pending.length === 0 || conn.inFlight + size <= this.opts.maxInFlightBytes
  }

  private connection(signal?: AbortSignal): Promise<Conn<Req, Rep>> {
    const conn = this.conn
    if (
      conn !== undefined &&
      !conn.dead &&
      conn.stream.status === 'open' &&
      conn.stream.writeStatus === 'writable'
    ) {
      return Promise.resolve(conn)
    }
    if (conn !== undefined)
      this.fail(conn, new StreamBrokenError(`${this.opts.name}: stream no longer writable`))
    this.opening ??= this.openConnection().finally(() => {
      this.opening = undefined
    })
    return raceSignal(this.opening, signal)
  }

  private async openConnection(): Promise<Conn<Req, Rep>> {
    const signal = AbortSignal.any([AbortSignal.timeout(this.opts.openTimeoutMs), this.closer.signal])
    const stream = await this.opts.open(signal)
    if (this.closer.signal.aborted) {
      abortStream(stream, new ClientClosedError())
      throw new ClientClosedError()
    }
    const conn: Conn<Req, Rep> = {
      stream,
      io: framed(stream, this.opts.maxMessageBytes),
      pending: [],
      inFlight: 0,
      dead: false,
      writes: Promise.resolve(),
      room: Promise.withResolvers<void>(),
    }
    this.conn = conn
    void this.readLoop(conn)
    return conn
  }

  private send(conn: Conn<Req, Rep>, req: Req, bytes: Uint8Array, size: number, options: RequestOptions) {
    const { promise, resolve, reject } = Promise.withResolvers<Rep>()
    const entry: Pending<Req, Rep> = { req, size, settled: false, resolve, reject }
    conn.pending.push(entry)
    conn.inFlight += size
    clearTimeout(conn.idleTimer)
    conn.writes = conn.writes
      .then(() => (conn.dead ? undefined : conn.io.write(bytes)))
      .catch((err: unknown) => this.fail(conn, err))
    const timeoutMs = options.timeoutMs ?? this.opts.timeoutMs
    entry.timer = setTimeout(() => {
      const err = new RequestTimeoutError(`${this.opts.name}: no reply within ${timeoutMs} ms`)
      this.fail(conn, err, entry)
    }, timeoutMs)
    const signal = options.signal
    if (signal !== undefined) {
      const onAbort = () => this.settle(entry, () => entry.reject(signal.reason))
      signal.addEventListener('abort', onAbort, { once: true })
      promise.then(
        () => signal.removeEventListener('abort', onAbort),
        () => signal.removeEventListener('abort', onAbort),
      )
    }
    return promise
  }

  private settle(entry: Pending<Req, Rep>, how: () => void): void {
    if (entry.settled) return
    entry.settled = true
    clearTimeout(entry.timer)
    how()
  }

  private async readLoop(conn: Conn<Req, Rep>): Promise<void> {
    try {
      while (true) {
        const frame = await conn.io.read()
        if (frame === null) {
          if (conn.pending.length > 0) {
            throw new StreamBrokenError(`${this.opts.name}: peer closed the stream with requests outstanding`)
          }
          this.retire(conn)
          return
        }
        this.onReply(conn, this.opts.decode(frame))
      }
    } catch (err) {
      this.fail(conn, err)
    }
  }

  private onReply(conn: Conn<Req, Rep>, rep: Rep | ErrorReply): void {
    const entry = conn.pending[0]
    if (entry === undefined) throw new RemoteProtocolError(`${this.opts.name}: reply to no request`)
    if (rep.t !== 'error' && !this.opts.matches(entry.req, rep as Rep)) {
      throw new RemoteProtocolError(`${this.opts.name}: reply ${rep.t} does not answer ${entry.req.t}`)
    }
    conn.pending.shift()
    conn.inFlight -= entry.size
    if (rep.t === 'error') {
      const e = rep as ErrorReply
      this.settle(entry, () =>
        entry.reject(new RemoteRequestError(e.code, `${this.opts.name}: ${e.message}`)),
      )
    } else if (entry.settled) {
      this.opts.onLateReply?.(entry.req, rep as Rep)
    } else {
      this.settle(entry, () => entry.resolve(rep as Rep))
    }
    this.wake(conn)
    if (conn.pending.length === 0 && this.opts.idleCloseMs > 0) {
      clearTimeout(conn.idleTimer)
      conn.idleTimer = setTimeout(() => this.retire(conn), this.opts.idleCloseMs)
      conn.idleTimer.unref?.()
    }
  }

  private wake(conn: Conn<Req, Rep>): void {
    const room = conn.room
    conn.room = Promise.withResolvers<void>()
    room.resolve()
  }

  /** Closes an idle stream gracefully; later requests open a new one. */
  private retire(conn: Conn<Req, Rep>): void {
    if (conn.dead || conn.pending.length > 0) return
    conn.dead = true
    clearTimeout(conn.idleTimer)
    if (this.conn === conn) this.conn = undefined
    this.wake(conn)
    conn.stream.close().catch((err: unknown) => abortStream(conn.stream, err))
  }

  /** The stream is unusable: abort it and fail every outstanding request. */
  private fail(conn: Conn<Req, Rep>, err: unknown, culprit?: Pending<Req, Rep>): void {
    if (conn.dead && conn.pending.length === 0) return
    conn.dead = true
    clearTimeout(conn.idleTimer)
    if (this.conn === conn) this.conn = undefined
    abortStream(conn.stream, err)
    const broken =
      err instanceof GridnodeError && !(err instanceof RequestTimeoutError)
        ? err
        : new StreamBrokenError(`${this.opts.name}: ${asError(err).message}`, { cause: err })
    for (const entry of conn.pending.splice(0)) {
      this.settle(entry, () => entry.reject(entry === culprit ? err : broken))
    }
    conn.inFlight = 0
    this.wake(conn)
  }
}
