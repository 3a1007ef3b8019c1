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
  type ChannelFrame,
  decodeFrame,
  encodeCancel,
  encodeRequest,
  FRAME_ANSWER,
  FrameError,
  FrameReader,
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
}

export class ClientChannel {
  private readonly socket: Socket
  private readonly reader = new FrameReader(API_MAX_ANSWER_FRAME)
  private readonly pending = new Map<number, Pending>()
  private nextId = 1
  /** Why the channel is closed; undefined while it is open. */
  private closedWith?: Error

  private constructor(socket: Socket, head: Buffer) {
    this.socket = socket
    socket.setNoDelay(true)
    socket.unref()
    socket.on('data', (chunk: Buffer) => this.onData(chunk))
    socket.on('error', (err: Error) => this.shut(err))
    socket.on('close', () => this.shut(new Error('the daemon closed the connection')))
    if (head.length > 0) this.onData(head)
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
      const settle = () => signal?.removeEventListener('abort', onAbort)
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
    const id = this.nextId
    this.nextId = id >= 0xffff_ffff ? 1 : id + 1
    const frame = encodeRequest(id, method, target, body)
    return new Promise<ChannelAnswer>((resolve, reject) => {
      const p: Pending = { resolve, reject }
      if (signal) {
        p.signal = signal
        p.onAbort = () => {
          if (!this.pending.delete(id)) return
          this.idle()
          if (this.open) this.socket.write(encodeCancel(id))
          reject(abortError())
        }
        signal.addEventListener('abort', p.onAbort, { once: true })
      }
      this.pending.set(id, p)
      if (this.pending.size === 1) this.socket.ref()
      this.socket.write(frame)
    })
  }

  close(): void {
    this.socket.destroy()
  }

  private onData(chunk: Buffer): void {
    let frames: Buffer[]
    try {
      frames = this.reader.push(chunk)
    } catch (err) {
      return this.fail(err as Error)
    }
    for (const f of frames) {
      let frame: ChannelFrame
      try {
        frame = decodeFrame(f)
      } catch (err) {
        return this.fail(err as Error)
      }
      if (frame.kind !== FRAME_ANSWER)
        return this.fail(new FrameError('the daemon sent a frame that is not an answer'))
      const p = this.pending.get(frame.id)
      if (p === undefined) continue // cancelled here already
      this.pending.delete(frame.id)
      if (p.onAbort) p.signal?.removeEventListener('abort', p.onAbort)
      this.idle()
      p.resolve({ status: frame.status, text: frame.body.toString('utf8') })
    }
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
    const waiting = [...this.pending.values()]
    this.pending.clear()
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
