/**
 * The server loop of the request/response protocols: pipelined requests on
 * one long-lived stream, answered one at a time and in order.
 */
import type { Stream } from '@libp2p/interface'
import { RemoteProtocolError } from '../errors.ts'
import { RateLimitedError, RequestTimeoutError } from './errors.ts'
import { abortStream, asError, type FramedStream, framed } from './frames.ts'
import type { ErrorReply } from './message.ts'
import { type Clock, type InboundStats, type KindCounters, WindowCounter } from './rate-limit.ts'

export interface ServeOptions<Req, Rep> {
  /** For error messages, e.g. the protocol id. */
  name: string
  maxMessageBytes: number
  /** Throws RemoteProtocolError on a bad request. */
  decode(bytes: Uint8Array): Req
  encode(reply: Rep | ErrorReply): Uint8Array
  /**
   * Answers one request. If it throws, the peer gets an error reply (code and
   * message of what was thrown), the error goes to `onError`, and the stream
   * goes on.
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
  /** Close the stream when no frame starts for this long between requests (ms); 0 or absent: never. */
  idleTimeoutMs?: number
  /** The request's kind for limits and counters (its message type). */
  kindOf?(req: Req): string
  /**
   * Whether to handle this request now. When it says no, the peer gets an
   * error reply GN_RATE_LIMITED instead and `handle` is not called.
   */
  admit?(req: Req): boolean
  /** Close the stream once this many requests were refused by `admit` within one second. Default: never. */
  floodCloseAfter?: number
  /** Counters to update (requests, limited, failed, streams closed). */
  stats?: InboundStats
  /** For the flood window and the cost measurements; default performance.now. */
  clock?: Clock
  /**
   * The sender's cost budget (rate-limit.ts CostBudget, bound to the peer): the stream is not
   * read while it is in debt, and decoding each request and its handler's synchronous part are
   * charged to it.
   */
  cost?: PeerCost
}

/** One peer's view of a CostBudget. */
export interface PeerCost {
  waitMs(): number
  charge(ms: number): void
}

type CloseReason = keyof InboundStats['streamsClosed']

function closeReasonOf(err: unknown): CloseReason {
  if (err instanceof RemoteProtocolError) return 'malformed'
  if (err instanceof RequestTimeoutError) return 'timeout'
  return 'broken'
}

/**
 * Serves framed requests on one stream, one after another, until the peer
 * closes its end; then closes ours. A malformed or oversized frame, a timeout
 * or a broken stream aborts this stream only and is reported to `onError`.
 * The returned promise always resolves.
 */
export async function serveRequests<Req, Rep>(
  stream: Stream,
  options: ServeOptions<Req, Rep>,
): Promise<void> {
  // A failing error callback (a logger that throws) must not turn into a rejection nobody handles.
  const onError = options.onError
  const opts: ServeOptions<Req, Rep> =
    onError === undefined
      ? options
      : {
          ...options,
          onError: (err) => {
            try {
              onError(err)
            } catch {
              // Nowhere left to report it.
            }
          },
        }
  let frameTimer: NodeJS.Timeout | undefined
  let idleTimer: NodeJS.Timeout | undefined
  /** Set when we end the stream on purpose, so the error the read then throws is not what gets reported. */
  let closing: { reason: CloseReason; err: Error } | undefined
  const closeFor = (reason: CloseReason, err: Error) => {
    closing ??= { reason, err }
    abortStream(stream, err)
  }
  const io = framed(stream, opts.maxMessageBytes, () => {
    clearTimeout(idleTimer)
    frameTimer = setTimeout(() => {
      closeFor(
        'timeout',
        new RequestTimeoutError(`${opts.name}: frame not received within ${opts.timeoutMs} ms`),
      )
    }, opts.timeoutMs)
  })
  const idleMs = opts.idleTimeoutMs ?? 0
  const clock = opts.clock ?? (() => performance.now())
  const flood =
    opts.floodCloseAfter !== undefined && opts.floodCloseAfter > 0 ? new WindowCounter(clock) : undefined
  try {
    while (true) {
      if (opts.cost !== undefined) await overBudget(opts, opts.cost, stream)
      if (idleMs > 0) {
        idleTimer = setTimeout(
          () => closeFor('idle', new RequestTimeoutError(`${opts.name}: idle for ${idleMs} ms; closed`)),
          idleMs,
        )
      }
      const frame = await io.read()
      clearTimeout(idleTimer)
      clearTimeout(frameTimer)
      if (frame === null) break
      // Again before decoding, checked in the same turn as the decode: several streams of one peer
      // waiting in read() each passed the check above before any of their frames was charged.
      while (opts.cost !== undefined && opts.cost.waitMs() > 0) await overBudget(opts, opts.cost, stream)
      const decodeStart = clock()
      let req: Req
      try {
        req = opts.decode(frame)
      } finally {
        opts.cost?.charge(clock() - decodeStart)
      }
      const kind = opts.kindOf?.(req)
      const counters = kind === undefined ? undefined : opts.stats?.kind(kind)
      if (counters) counters.received++
      if (opts.admit !== undefined && !admitted(opts, req)) {
        if (counters) counters.limited++
        const limited = new RateLimitedError(
          `${opts.name}: ${kind ?? 'request'} over the rate limit; try later`,
        )
        if (flood !== undefined && flood.hit() >= (opts.floodCloseAfter ?? 0)) {
          closeFor(
            'flood',
            new RateLimitedError(
              `${opts.name}: ${opts.floodCloseAfter} requests over the rate limit within a second; stream closed`,
            ),
          )
          break
        }
        await writeReply(io, opts, opts.encode(opts.errorReply(limited)))
        continue
      }
      await answer(io, opts, req, counters, clock)
    }
    if (closing === undefined) await stream.close()
    else throw closing.err
  } catch (err) {
    const reported = closing?.err ?? asError(err)
    abortStream(stream, reported)
    const reason = closing?.reason ?? closeReasonOf(err)
    if (opts.stats) opts.stats.streamsClosed[reason]++
    opts.onError?.(reported)
  } finally {
    clearTimeout(frameTimer)
    clearTimeout(idleTimer)
  }
}

/**
 * Waits while the peer's cost budget is in debt, the stream paused: the muxer stops granting the
 * peer send window, so past what it was already granted (up to yamux's window), what it sends
 * waits on its side. Counted in the stats.
 */
async function overBudget<Req, Rep>(opts: ServeOptions<Req, Rep>, cost: PeerCost, stream: Stream) {
  let ms = cost.waitMs()
  if (ms <= 0) return
  if (opts.stats) opts.stats.overBudget.waits++
  let paused = false
  try {
    stream.pause()
    paused = true
  } catch {
    // Closing: nothing more comes on it; the wait is still due (returning at once made the
    // caller's check-and-wait loop spin without ever yielding to a timer).
  }
  try {
    while (ms > 0) {
      await new Promise((resolve) => setTimeout(resolve, ms))
      if (opts.stats) opts.stats.overBudget.waitedMs += ms
      ms = cost.waitMs()
    }
  } finally {
    if (paused)
      try {
        stream.resume()
      } catch {
        // Closed meanwhile.
      }
  }
}

/** `admit` failing counts as refusing: the limiter must not become a way to crash the loop. */
function admitted<Req, Rep>(opts: ServeOptions<Req, Rep>, req: Req): boolean {
  try {
    return opts.admit?.(req) ?? true
  } catch (err) {
    opts.onError?.(asError(err))
    return false
  }
}

function writeReply<Req, Rep>(io: FramedStream, opts: ServeOptions<Req, Rep>, bytes: Uint8Array) {
  return withTimeout(
    io.write(bytes),
    opts.timeoutMs,
    () => new RequestTimeoutError(`${opts.name}: reply not written within ${opts.timeoutMs} ms`),
  )
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

async function answer<Req, Rep>(
  io: FramedStream,
  opts: ServeOptions<Req, Rep>,
  req: Req,
  counters: KindCounters | undefined,
  clock: Clock,
): Promise<void> {
  const write = (bytes: Uint8Array) => writeReply(io, opts, bytes)
  const afterWrite = (reply: Rep, err?: Error) => safely(opts, () => opts.afterWrite?.(req, reply, err))
  // The handler's synchronous part (up to its first await) is charged to the peer.
  const handleStart = clock()
  const handled = (async () => opts.handle(req))()
  opts.cost?.charge(clock() - handleStart)
  let timedOut: RequestTimeoutError | undefined
  let reply: Rep
  try {
    reply = await withTimeout(handled, opts.timeoutMs, () => {
      timedOut = new RequestTimeoutError(`${opts.name}: no reply within ${opts.timeoutMs} ms`)
      return timedOut
    })
  } catch (err) {
    if (err === timedOut) {
      // The stream is about to be aborted: a reply that comes later is never written.
      handled.then(
        (late) => afterWrite(late, timedOut),
        () => {},
      )
      throw err
    }
    // The message is dropped (the peer gets an error reply); the stream and the node go on.
    if (counters) counters.failed++
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
