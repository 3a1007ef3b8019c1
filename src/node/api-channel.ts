/**
 * The daemon's end of one API channel (src/domain/api-frames.ts): frames in,
 * requests to the API's JSON routes, answers out as each finishes. The upgrade
 * that opened it checked the token; from then on every frame is still checked.
 * A frame that breaks the format closes the channel (it cannot be read past),
 * and a request that is merely wrong gets its error answer like over HTTP.
 */
import type { Duplex } from 'node:stream'
import {
  API_MAX_REQUEST_FRAME,
  API_MIN_FRAME,
  type ChannelFrame,
  encodeAnswer,
  FRAME_CANCEL,
  FRAME_REQUEST,
  FrameError,
  FrameReader,
  readFrames,
} from '../domain/api-frames.ts'
import type { ApiAnswer } from './api.ts'
import type { Logger } from './logger.ts'

/** What a channel asks of the API (ApiServer.answer). */
export interface ChannelApi {
  answer(
    method: string,
    target: string,
    body: { type: number; bytes: Buffer },
    signal: AbortSignal,
    host: string,
  ): Promise<ApiAnswer>
}

/** Requests one channel may have in flight; past it, requests are answered 503 at once. */
export const MAX_CHANNEL_IN_FLIGHT = 4096

type RequestFrame = Extract<ChannelFrame, { kind: typeof FRAME_REQUEST }>

export class ServerChannel {
  /** Settles once the connection is gone, for whatever reason. */
  readonly closed: Promise<void>
  private readonly socket: Duplex
  private readonly host: string
  private readonly api: ChannelApi
  private readonly log: Logger
  private readonly reader = new FrameReader(API_MAX_REQUEST_FRAME, API_MIN_FRAME)
  private readonly inFlight = new Map<number, AbortController>()
  private readonly markClosed: () => void

  constructor(socket: Duplex, host: string, api: ChannelApi, log: Logger) {
    this.socket = socket
    this.host = host
    this.api = api
    this.log = log
    const { promise, resolve } = Promise.withResolvers<void>()
    this.closed = promise
    this.markClosed = resolve
  }

  /** Starts reading; `head` is what arrived with the upgrade request. */
  start(head: Buffer): void {
    const s = this.socket
    const read = (chunk: Buffer) => {
      try {
        this.onData(chunk)
      } catch (err) {
        this.fail(err)
      }
    }
    s.on('data', read)
    // The HTTP server keeps half-open connections; a client that ends its side has gone.
    s.on('end', () => s.destroy())
    s.on('close', () => {
      for (const c of this.inFlight.values()) c.abort()
      this.inFlight.clear()
      this.markClosed()
    })
    s.on('drain', () => s.resume())
    if (head.length > 0) read(head)
  }

  close(): void {
    this.socket.destroy()
  }

  /** Throws FrameError on bytes that break the format. */
  private onData(chunk: Buffer): void {
    for (const frame of readFrames(this.reader, chunk)) {
      if (frame.kind === FRAME_CANCEL) this.inFlight.get(frame.id)?.abort()
      else if (frame.kind === FRAME_REQUEST) this.serve(frame)
      else throw new FrameError('a client sends requests and cancels, not answers')
      if (this.socket.destroyed) return
    }
  }

  private serve(frame: RequestFrame): void {
    const { id } = frame
    if (this.inFlight.has(id)) return this.fail(new FrameError(`request id ${id} is already in flight`))
    if (this.inFlight.size >= MAX_CHANNEL_IN_FLIGHT)
      return this.send(id, {
        status: 503,
        body: { error: { code: 'GN_BUSY', message: `over ${MAX_CHANNEL_IN_FLIGHT} requests in flight` } },
      })
    const controller = new AbortController()
    this.inFlight.set(id, controller)
    const body = { type: frame.bodyType, bytes: frame.body }
    this.api
      .answer(frame.method, frame.target, body, controller.signal, this.host)
      .then((a) => {
        this.inFlight.delete(id)
        // A request the client cancelled, or one cut off by the connection closing, needs no answer.
        if (!controller.signal.aborted) this.send(id, a)
      })
      .catch((err: unknown) => {
        // answer() and send() turn every error into an answer; this is the net under them.
        this.inFlight.delete(id)
        this.log.error({ err }, 'API channel request failed')
        this.close()
      })
  }

  private send(id: number, a: ApiAnswer): void {
    if (this.socket.destroyed) return
    let status = a.status
    let json: string | undefined
    try {
      json = JSON.stringify(a.body)
      if (json === undefined) throw new TypeError('the answer is not a JSON value')
      if (!Number.isInteger(status) || status < 100 || status > 599) throw new RangeError(`status ${status}`)
    } catch (err) {
      // Too large for a string, or a value JSON cannot carry: the same 500 as over HTTP.
      this.log.error({ err }, 'API handler failed')
      status = 500
      json = JSON.stringify({
        error: { code: 'GN_INTERNAL', message: String((err as Error)?.message ?? err) },
      })
    }
    // Answers the client does not read: stop reading its requests until they drain.
    if (!this.socket.write(encodeAnswer(id, status, json))) this.socket.pause()
  }

  /** A malformed frame (the client's fault) or a failure of ours (the net under every check): this channel ends. */
  private fail(err: unknown): void {
    if (err instanceof FrameError)
      this.log.warn({ err: err.message }, 'API channel: a malformed frame; closing the channel')
    else this.log.error({ err }, 'API channel failed')
    this.socket.destroy()
  }
}
