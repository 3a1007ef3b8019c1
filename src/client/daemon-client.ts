/**
 * Talks to the local daemon's control API, found through the data dir
 * (api.json for the address, api.token for the bearer token). Errors from the
 * daemon come back as GridnodeErrors with their original code.
 */
import { Agent, request as httpRequest, type IncomingMessage } from 'node:http'
import { processAlive, readApiInfo, resolveDataDir } from '../domain/api-files.ts'
import { NoDaemonError } from '../domain/errors.ts'
import { errorFromCode } from './errors.ts'
import { streamBody } from './files.ts'

/** Connections to the local daemon are reused; none keeps a process alive when idle. */
const AGENT = new Agent({ keepAlive: true, maxSockets: 16 })

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
   * One JSON request. Plain node:http over a keep-alive agent: about a third of fetch's cost per
   * call, which is most of a single task's round trip.
   */
  request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const headers: Record<string, string | number> = { authorization: this.auth }
    let payload: Uint8Array | string | undefined
    if (body instanceof Uint8Array) {
      headers['content-type'] = 'application/octet-stream'
      payload = body
    } else if (body !== undefined) {
      headers['content-type'] = 'application/json'
      payload = JSON.stringify(body)
    }
    if (payload !== undefined) headers['content-length'] = Buffer.byteLength(payload)
    return new Promise<T>((resolve, reject) => {
      const req = httpRequest(
        `${this.url}${path}`,
        { method, headers, agent: AGENT, signal },
        (res: IncomingMessage) => {
          const chunks: Buffer[] = []
          res.on('data', (c: Buffer) => chunks.push(c))
          res.on('error', reject)
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8')
            const status = res.statusCode ?? 0
            let json: unknown
            try {
              json = text.length > 0 ? JSON.parse(text) : undefined
            } catch {
              json = undefined
            }
            if (status >= 200 && status < 300) return resolve(json as T)
            const e = (json as { error?: { code?: string; message?: string } } | undefined)?.error
            reject(errorFromCode(e?.code ?? 'GN_HTTP', e?.message ?? `${method} ${path}: HTTP ${status}`))
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

function causeOf(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string; message?: string } }
  return e.cause?.code ?? e.cause?.message ?? e.code ?? (err as Error).message
}
