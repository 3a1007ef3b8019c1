/**
 * The server loop of the request/response protocols: pipelined requests on
 * one long-lived stream, answered one at a time and in order.
 */
import type { Stream } from '@libp2p/interface'
import { RequestTimeoutError } from './errors.ts'
import { abortStream, asError, type FramedStream, framed } from './frames.ts'
import type { ErrorReply } from './message.ts'

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
