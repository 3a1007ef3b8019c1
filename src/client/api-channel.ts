/**
 * The client's end of the API channel (src/domain/api-frames.ts): one
 * upgraded connection to the daemon per process and daemon, carrying every
 * JSON request as a frame, many in flight at once. It keeps the process alive
 * only while a request waits for its answer.
 */
import { request as httpRequest, type IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import {
  API_CHANNEL_PATH,
  API_CHANNEL_PROTOCOL,
  API_MAX_ANSWER_FRAME,
  API_MIN_FRAME,
  encodeCancel,
  encodeRequest,
  FRAME_ANSWER,
  FrameError,
  FrameReader,
  readFrames,
} from '../domain/api-frames.ts'

export interface ChannelAnswer {
  status: number
  /** The answer's JSON text. */
  text: string
}

interface Pending {
  resolve: (a: ChannelAnswer) => void
  reject: (err: unknown) => void
  signal?: AbortSignal
  onAbort?: () => void
  /** The request's frame while it waits its turn (MAX_SENT); undefined once written. */
  frame?: Buffer
}

/**
 * Requests written and not yet answered, per channel; more wait here in order, as HTTP's agent
 * queued requests past its sockets. Below the daemon's own limit per channel (4,096), which would
 * refuse the excess: a `wait=1` submit stays in flight until its task ends.
 */
export const MAX_SENT = 1024
/** How long the daemon has to answer the upgrade before the client speaks HTTP instead. */
export const UPGRADE_TIMEOUT_MS = 5000

export class ClientChannel {
  private readonly socket: Socket
  private reader = new FrameReader(API_MAX_ANSWER_FRAME, API_MIN_FRAME)
  /** Every request not yet answered, written or waiting. */
  private readonly pending = new Map<number, Pending>()
  /** Ids of requests waiting to be written, oldest first (aborted ones are skipped). */
  private readonly queued: number[] = []
  private sent = 0
  private nextId = 1
  /** Why the channel is closed; undefined while it is open. */
  private closedWith?: Error

  private constructor(socket: Socket, head: Buffer) {
    this.socket = socket
    socket.setNoDelay(true)
    socket.unref()
    const read = (chunk: Buffer) => {
      try {
        this.onData(chunk)
      } catch (err) {
        this.fail(err as Error)
      }
    }
    socket.on('data', read)
    socket.on('error', (err: Error) => this.shut(err))
    socket.on('close', () => this.shut(new Error('the daemon closed the connection')))
    if (head.length > 0) read(head)
  }

  /**
   * Opens a channel to the API at `url`. Answers undefined when the daemon answers the upgrade
   * with anything but 101 (the caller speaks HTTP instead); throws when the daemon cannot be reached.
   */
  static open(url: string, auth: string, signal?: AbortSignal): Promise<ClientChannel | undefined> {
    return new Promise((resolve, reject) => {
      if (signal?.aborted) return reject(abortError())
      const req = httpRequest(`${url}${API_CHANNEL_PATH}`, {
        agent: false,
        headers: { connection: 'Upgrade', upgrade: API_CHANNEL_PROTOCOL, authorization: auth },
      })
      // Not node:http's own signal option: it would stay tied to the connection after the upgrade.
      const onAbort = () => req.destroy(abortError())
      signal?.addEventListener('abort', onAbort, { once: true })
      // A daemon that takes the connection but never answers (stopped, frozen) is asked over HTTP.
      const timer = setTimeout(() => req.destroy(new Error('no answer to the upgrade')), UPGRADE_TIMEOUT_MS)
      timer.unref()
      const settle = () => {
        clearTimeout(timer)
        signal?.removeEventListener('abort', onAbort)
      }
      req.on('upgrade', (res: IncomingMessage, socket: Socket, head: Buffer) => {
        settle()
        if (res.headers.upgrade?.toLowerCase() !== API_CHANNEL_PROTOCOL) {
          socket.destroy()
          resolve(undefined)
        } else resolve(new ClientChannel(socket, head))
      })
      req.on('response', (res: IncomingMessage) => {
        settle()
        res.resume()
        resolve(undefined)
      })
      req.on('error', (err: Error) => {
        settle()
        reject(err)
      })
      req.end()
    })
  }

  get open(): boolean {
    return this.closedWith === undefined
  }

  /** One request; `body` is JSON text or bytes. Rejects when the channel closes before the answer. */
  request(
    method: string,
    target: string,
    body?: string | Uint8Array,
    signal?: AbortSignal,
  ): Promise<ChannelAnswer> {
    if (this.closedWith) return Promise.reject(this.closedWith)
    if (signal?.aborted) return Promise.reject(abortError())
    const id = this.freeId()
    const frame = encodeRequest(id, method, target, body)
    return new Promise<ChannelAnswer>((resolve, reject) => {
      const p: Pending = { resolve, reject }
      if (signal) {
        p.signal = signal
        p.onAbort = () => {
          if (!this.pending.delete(id)) return
          if (p.frame === undefined) {
            // Written: the daemon stops working on it.
            this.sent--
            if (this.open) this.socket.write(encodeCancel(id))
            this.flushQueued()
          }
          this.idle()
          reject(abortError())
        }
        signal.addEventListener('abort', p.onAbort, { once: true })
      }
      this.pending.set(id, p)
      if (this.pending.size === 1) this.socket.ref()
      if (this.sent < MAX_SENT && this.queued.length === 0) {
        this.sent++
        this.socket.write(frame)
      } else {
        p.frame = frame
        this.queued.push(id)
      }
    })
  }

  /** The next id no request still holds (ids wrap after 2^32 - 1). */
  private freeId(): number {
    let id = this.nextId
    while (this.pending.has(id)) id = id >= 0xffff_ffff ? 1 : id + 1
    this.nextId = id >= 0xffff_ffff ? 1 : id + 1
    return id
  }

  /** Writes waiting requests while fewer than MAX_SENT are out. */
  private flushQueued(): void {
    while (this.sent < MAX_SENT && this.queued.length > 0 && this.open) {
      const p = this.pending.get(this.queued.shift()!)
      if (p?.frame === undefined) continue // aborted while it waited
      const frame = p.frame
      p.frame = undefined
      this.sent++
      this.socket.write(frame)
    }
  }

  close(): void {
    this.socket.destroy()
  }

  /** Throws FrameError on bytes that break the format. */
  private onData(chunk: Buffer): void {
    for (const frame of readFrames(this.reader, chunk)) {
      if (frame.kind !== FRAME_ANSWER) throw new FrameError('the daemon sent a frame that is not an answer')
      const p = this.pending.get(frame.id)
      if (p === undefined || p.frame !== undefined) continue // cancelled here already (or never asked)
      this.pending.delete(frame.id)
      this.sent--
      if (p.onAbort) p.signal?.removeEventListener('abort', p.onAbort)
      p.resolve({ status: frame.status, text: frame.body.toString('utf8') })
    }
    this.flushQueued()
    this.idle()
  }

  /** No request waiting: the connection no longer holds the process open. */
  private idle(): void {
    if (this.pending.size === 0 && this.open) this.socket.unref()
  }

  private fail(err: Error): void {
    this.shut(new Error(`the daemon's answer was malformed: ${err.message}`))
    this.socket.destroy()
  }

  private shut(err: Error): void {
    if (this.closedWith) return
    this.closedWith = err
    // A partial answer has no reader left.
    this.reader = new FrameReader(API_MAX_ANSWER_FRAME, API_MIN_FRAME)
    const waiting = [...this.pending.values()]
    this.pending.clear()
    this.queued.length = 0
    this.sent = 0
    for (const p of waiting) {
      if (p.onAbort) p.signal?.removeEventListener('abort', p.onAbort)
      p.reject(err)
    }
  }
}

/** What node:http rejects with when its signal aborts. */
function abortError(): Error {
  return new DOMException('This operation was aborted', 'AbortError')
}
