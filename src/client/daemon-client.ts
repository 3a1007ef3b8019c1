/**
 * Talks to the local daemon's control API, found through the data dir
 * (api.json for the address, api.token for the bearer token). Errors from the
 * daemon come back as GridnodeErrors with their original code.
 */
import { resolveDataDir } from '../node/config/load.ts'
import { processAlive, readApiInfo } from '../node/data-dir.ts'
import { NoDaemonError } from '../node/errors.ts'
import { errorFromCode } from './errors.ts'

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

  async request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
    const res = await this.fetch(method, path, body, signal)
    return (await res.json()) as T
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
  const cause = (err as { cause?: { code?: string; message?: string } }).cause
  return cause?.code ?? cause?.message ?? (err as Error).message
}
