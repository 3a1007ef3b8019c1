/**
 * The client side of the request/response protocols: one lazily opened
 * stream per peer and protocol, pipelining, FIFO replies, reopening after
 * failures.
 */
import type { Stream } from '@libp2p/interface'
import { GridnodeError, RemoteProtocolError } from '../errors.ts'
import { ClientClosedError, RemoteRequestError, RequestTimeoutError, StreamBrokenError } from './errors.ts'
import { abortStream, asError, type FramedStream, framed, type OpenStream, varintLength } from './frames.ts'
import type { ErrorReply } from './message.ts'

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
      ...opts,
      timeoutMs: opts.timeoutMs ?? 30_000,
      openTimeoutMs: opts.openTimeoutMs ?? 10_000,
      maxPending: opts.maxPending ?? 32,
      maxInFlightBytes: opts.maxInFlightBytes ?? opts.maxMessageBytes,
      idleCloseMs: opts.idleCloseMs ?? 30_000,
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
      try {
        this.opts.onLateReply?.(entry.req, rep as Rep)
      } catch (err) {
        // The callback's failure is not the stream's: keep serving the other requests.
        process.emitWarning(`${this.opts.name}: onLateReply failed: ${asError(err).stack ?? String(err)}`)
      }
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
