/**
 * Talks to the local daemon's control API, found through the data dir
 * (api.json for the address, api.token for the bearer token). Errors from the
 * daemon come back as GridnodeErrors with their original code.
 *
 * JSON requests go over the API channel (./api-channel.ts), one connection
 * per daemon shared by every client in the process; plain HTTP when the
 * daemon refuses the channel, and always for streams and uploads.
 */
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http'
import { processAlive, readApiInfo, resolveDataDir } from '../domain/api-files.ts'
import { API_MAX_BODY_BYTES, API_MAX_TARGET_BYTES } from '../domain/api-frames.ts'
import { NoDaemonError } from '../domain/errors.ts'
import { ClientChannel } from './api-channel.ts'
import { errorFromCode } from './errors.ts'
import { streamBody } from './files.ts'

/** Connections to the local daemon are reused; none keeps a process alive when idle. */
const AGENT = new Agent({ keepAlive: true, maxSockets: 16 })

/**
 * Per daemon (address and token): its open channel, the opening of one, or the time until which
 * it answers over HTTP only (it refused the upgrade).
 */
const CHANNELS = new Map<string, ClientChannel | Promise<ClientChannel | undefined> | number>()
/** How long a daemon that refused the channel is asked over HTTP before the channel is tried again. */
const CHANNEL_RETRY_MS = 10_000

export interface DaemonClientOptions {
  /** The daemon's data dir; defaults to $GRIDNODE_HOME or ~/.gridnode. */
  dataDir?: string
}

export class DaemonClient {
  readonly dataDir: string
  private readonly url: string
  private readonly auth: string

  private constructor(dataDir: string, url: string, token: string) {
    this.dataDir = dataDir
    this.url = url
    this.auth = `Bearer ${token}`
  }

  static open(opts: DaemonClientOptions = {}): DaemonClient {
    const dataDir = resolveDataDir(opts.dataDir)
    const info = readApiInfo(dataDir)
    if (!info) throw new NoDaemonError(dataDir, 'no api.json in it')
    if (!processAlive(info.pid)) throw new NoDaemonError(dataDir, `its daemon, pid ${info.pid}, is gone`)
    return new DaemonClient(dataDir, info.url, info.token)
  }

  /**
   * One JSON request: over the channel (a frame each way on a connection kept open), else plain
   * node:http over a keep-alive agent. With the channel a single task's round trip took 40% less
   * (README, Performance).
   */
  request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const payload = body instanceof Uint8Array ? body : body === undefined ? undefined : JSON.stringify(body)
    const size =
      payload === undefined
        ? 0
        : typeof payload === 'string'
          ? Buffer.byteLength(payload)
          : payload.byteLength
    // Past the channel's limits, HTTP gives the daemon's own answer (413 for the body, 431 for the path).
    if (size > API_MAX_BODY_BYTES || path.length * 3 + 8 > API_MAX_TARGET_BYTES)
      return this.overHttp(method, path, payload, signal)
    const key = `${this.url} ${this.auth}`
    const ch = CHANNELS.get(key)
    if (ch instanceof ClientChannel && ch.open) return this.overChannel(ch, method, path, payload, signal)
    if (typeof ch === 'number' && Date.now() < ch) return this.overHttp(method, path, payload, signal)
    const opening = ch instanceof Promise ? ch : this.openChannel(key, signal)
    return untilAborted(opening, signal).then((c) =>
      c ? this.overChannel(c, method, path, payload, signal) : this.overHttp(method, path, payload, signal),
    )
  }

  /**
   * Opens the channel to this daemon once for every client in the process. Resolves undefined
   * (speak HTTP this time) when the daemon cannot be reached, then HTTP's attempt says so in the
   * usual words and the next request tries again; or when it refuses the upgrade, then it is asked
   * over HTTP for CHANNEL_RETRY_MS.
   */
  private openChannel(key: string, signal: AbortSignal | undefined): Promise<ClientChannel | undefined> {
    const opening: Promise<ClientChannel | undefined> = ClientChannel.open(this.url, this.auth, signal).then(
      (c) => {
        if (CHANNELS.get(key) === opening) CHANNELS.set(key, c ?? Date.now() + CHANNEL_RETRY_MS)
        return c
      },
      () => {
        if (CHANNELS.get(key) === opening) CHANNELS.delete(key)
        return undefined
      },
    )
    CHANNELS.set(key, opening)
    return opening
  }

  private async overChannel<T>(
    ch: ClientChannel,
    method: string,
    path: string,
    payload: string | Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    let answer: { status: number; text: string }
    try {
      answer = await ch.request(method, path, payload, signal)
    } catch (err) {
      if (signal?.aborted) throw err
      throw new NoDaemonError(
        this.dataDir,
        `its API at ${this.url} does not answer: ${(err as Error).message}`,
      )
    }
    return answerOf<T>(method, path, answer.status, answer.text)
  }

  private overHttp<T>(
    method: string,
    path: string,
    payload: string | Uint8Array | undefined,
    signal: AbortSignal | undefined,
  ): Promise<T> {
    const headers: Record<string, string | number> = { authorization: this.auth }
    if (payload !== undefined) {
      headers['content-type'] = typeof payload === 'string' ? 'application/json' : 'application/octet-stream'
      headers['content-length'] = Buffer.byteLength(payload)
    }
    return new Promise<T>((resolve, reject) => {
      const req = httpRequest(
        `${this.url}${path}`,
        { method, headers, agent: AGENT, signal },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', reject)
          res.on('end', () => {
            try {
              resolve(answerOf<T>(method, path, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8')))
            } catch (err) {
              reject(err)
            }
          })
        },
      )
      req.on('error', (err: Error) => {
        if (signal?.aborted) reject(err)
        else
          reject(new NoDaemonError(this.dataDir, `its API at ${this.url} does not answer: ${causeOf(err)}`))
      })
      req.end(payload)
    })
  }

  /** Streams `size` bytes from `body` as a PUT (file uploads); answers the JSON reply. Non-2xx answers throw. */
  async upload<T>(path: string, body: NodeJS.ReadableStream, size: number): Promise<T> {
    let answer: { status: number; text: string }
    try {
      answer = await streamBody(`${this.url}${path}`, this.auth, body, size)
    } catch (err) {
      throw new NoDaemonError(this.dataDir, `its API at ${this.url} does not answer: ${causeOf(err)}`)
    }
    let json: unknown
    try {
      json = answer.text.length > 0 ? JSON.parse(answer.text) : undefined
    } catch {
      json = undefined
    }
    if (answer.status >= 200 && answer.status < 300) return json as T
    const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error
    throw errorFromCode(e?.code ?? 'GN_HTTP', e?.message ?? `PUT ${path}: HTTP ${answer.status}`)
  }

  /** The raw response, for streams (SSE) and bytes. Non-2xx answers throw. */
  async fetch(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<Response> {
    const headers: Record<string, string> = { authorization: this.auth }
    let payload: BodyInit | undefined
    if (body instanceof Uint8Array) {
      headers['content-type'] = 'application/octet-stream'
      payload = body as Uint8Array<ArrayBuffer>
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json'
      payload = JSON.stringify(body)
    }
    let res: Response
    try {
      res = await fetch(`${this.url}${path}`, { method, headers, body: payload, signal })
    } catch (err) {
      if (signal?.aborted) throw err
      throw new NoDaemonError(this.dataDir, `its API at ${this.url} does not answer: ${causeOf(err)}`)
    }
    if (!res.ok) {
      let code = 'GN_HTTP'
      let message = `${method} ${path}: HTTP ${res.status}`
      try {
        const j = (await res.json()) as { error?: { code?: string; message?: string } }
        code = j.error?.code ?? code
        message = j.error?.message ?? message
      } catch {
        // not JSON: keep the status line
      }
      throw errorFromCode(code, message)
    }
    return res
  }
}

/** `p`, or undefined as soon as `signal` aborts (a daemon that accepts but never answers). */
function untilAborted<T>(p: Promise<T | undefined>, signal: AbortSignal | undefined): Promise<T | undefined> {
  if (signal === undefined) return p
  if (signal.aborted) return Promise.resolve(undefined)
  return new Promise((resolve) => {
    const onAbort = () => resolve(undefined)
    signal.addEventListener('abort', onAbort, { once: true })
    p.then((v) => {
      signal.removeEventListener('abort', onAbort)
      resolve(v)
    })
  })
}

/** A JSON answer's value; a non-2xx answer throws its error with the daemon's code. */
function answerOf<T>(method: string, path: string, status: number, text: string): T {
  let json: unknown
  try {
    json = text.length > 0 ? JSON.parse(text) : undefined
  } catch {
    json = undefined
  }
  if (status >= 200 && status < 300) return json as T
  const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error
  throw errorFromCode(e?.code ?? 'GN_HTTP', e?.message ?? `${method} ${path}: HTTP ${status}`)
}

function causeOf(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string; message?: string } }
  return e.cause?.code ?? e.cause?.message ?? e.code ?? (err as Error).message
}
