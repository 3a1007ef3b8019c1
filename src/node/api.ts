/**
 * The local control API: HTTP/1.1 on 127.0.0.1, JSON in and out, a bearer
 * token from the data dir on every request, server-sent events for streams.
 * Routes are a table; handlers return values or throw GridnodeErrors, which
 * become `{ error: { code, message } }` with a fitting status.
 *
 * The same JSON routes also answer on the channel (src/domain/api-frames.ts,
 * ./api-channel.ts): one upgraded connection per client, a frame per request
 * and answer. Routes that stream or read the HTTP request themselves
 * (`httpRoute`) are HTTP only.
 */
import { timingSafeEqual } from 'node:crypto'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import { type AddressInfo, Socket } from 'node:net'
import type { Duplex } from 'node:stream'
import {
  API_CHANNEL_PATH,
  API_CHANNEL_PROTOCOL,
  API_MAX_BODY_BYTES,
  BODY_BYTES,
  BODY_JSON,
} from '../domain/api-frames.ts'
import { GridnodeError } from '../errors.ts'
import { ServerChannel } from './api-channel.ts'
import type { Logger } from './logger.ts'

/** What a JSON route sees of a request, over HTTP or the channel alike. */
export interface ApiRequest {
  params: Record<string, string>
  query: URLSearchParams
  body: unknown
  signal: AbortSignal
  /** The Host the client addressed (for links back to this API). */
  host: string
}

/** What an HTTP-only route sees: the request and response themselves. */
export interface HttpApiRequest extends ApiRequest {
  raw: IncomingMessage
  res: ServerResponse
}

/** A handler returns the JSON body, or `STREAMED` when it wrote the response itself (SSE, bytes). */
export type ApiHandler = (req: ApiRequest) => unknown | Promise<unknown>
export type HttpApiHandler = (req: HttpApiRequest) => unknown | Promise<unknown>
export const STREAMED = Symbol('streamed')

type Route = {
  method: string
  pattern: RegExp
  keys: string[]
  /** Answered without the token (the dashboard's login and page shell). */
  public: boolean
  /** The handler reads the request body itself (streamed uploads): no size cap, no parsing. */
  rawBody: boolean
} & ({ http: false; handler: ApiHandler } | { http: true; handler: HttpApiHandler })

/** An answer to a channel request: the status and the JSON body. */
export interface ApiAnswer {
  status: number
  body: unknown
}

/** At most this many channels are open at once (each is a client process). */
const MAX_CHANNELS = 256

export class ApiError extends GridnodeError {
  readonly status: number
  constructor(status: number, code: string, message: string) {
    super(code, message)
    this.status = status
  }
}

export class ApiServer {
  private readonly routes: Route[] = []
  private readonly token: Buffer
  private readonly log: Logger
  private server?: Server
  private sessionCheck?: (req: IncomingMessage) => boolean
  private readonly channels = new Set<ServerChannel>()

  constructor(token: string, log: Logger) {
    this.token = Buffer.from(`Bearer ${token}`)
    this.log = log
  }

  /**
   * Another way in besides the bearer token: the dashboard's session cookie. A request let in
   * this way that changes anything (not GET) must come from the API's own origin.
   */
  allowSessions(check: (req: IncomingMessage) => boolean): void {
    this.sessionCheck = check
  }

  /** Channels open now (one per client process), for status. */
  get channelCount(): number {
    return this.channels.size
  }

  /** A JSON route: answered over HTTP and the channel. */
  route(method: string, path: string, handler: ApiHandler): this {
    return this.add(method, path, { http: false, handler }, {})
  }

  /** A route that writes its own response or reads the raw request (streams, uploads, pages): HTTP only. */
  httpRoute(
    method: string,
    path: string,
    handler: HttpApiHandler,
    opts: { public?: boolean; rawBody?: boolean } = {},
  ): this {
    return this.add(method, path, { http: true, handler }, opts)
  }

  private add(
    method: string,
    path: string,
    h: { http: false; handler: ApiHandler } | { http: true; handler: HttpApiHandler },
    opts: { public?: boolean; rawBody?: boolean },
  ): this {
    const keys: string[] = []
    const pattern = new RegExp(
      `^${path.replace(/:(\w+)/g, (_, k: string) => {
        keys.push(k)
        return '([^/]+)'
      })}$`,
    )
    this.routes.push({
      method,
      pattern,
      keys,
      public: opts.public === true,
      rawBody: opts.rawBody === true,
      ...h,
    })
    return this
  }

  async listen(host: string, port: number): Promise<string> {
    // Only the channel's upgrade leaves HTTP: other requests that carry an Upgrade header (h2c
    // from curl --http2 or Java's HttpClient) are answered as plain HTTP/1.1.
    const server = createServer({ shouldUpgradeCallback: isChannelUpgrade }, (req, res) => {
      this.dispatch(req, res).catch((err: unknown) => {
        // dispatch answers every error itself; this is the last net under it.
        this.log.error({ err }, 'API request failed')
        res.destroy()
      })
    })
    server.keepAliveTimeout = 30_000
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      try {
        this.upgrade(req, socket, head)
      } catch (err) {
        // A listener that throws would take the daemon down; this connection is all it costs.
        this.log.error({ err }, 'API channel upgrade failed')
        socket.destroy()
      }
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve())
    })
    const addr = server.address() as AddressInfo
    const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
    return `http://${h}:${addr.port}`
  }

  async close(): Promise<void> {
    const server = this.server
    if (!server) return
    // Upgraded connections are no longer the HTTP server's to close.
    for (const ch of this.channels) ch.close()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }

  private hasToken(req: IncomingMessage): boolean {
    const given = Buffer.from(req.headers.authorization ?? '')
    return given.length === this.token.length && timingSafeEqual(given, this.token)
  }

  private authorized(req: IncomingMessage): boolean {
    if (this.hasToken(req)) return true
    if (this.sessionCheck === undefined || !this.sessionCheck(req)) return false
    return (
      req.method === 'GET' || req.method === 'HEAD' || req.headers.origin === `http://${req.headers.host}`
    )
  }

  private async dispatch(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const controller = new AbortController()
    // Only a client that leaves before its answer aborts the handler (creating abort reasons is not free).
    res.on('close', () => {
      if (!res.writableFinished) controller.abort()
    })
    try {
      const url = new URL(req.url ?? '/', 'http://localhost')
      const unauthorized = () =>
        new ApiError(401, 'GN_UNAUTHORIZED', 'missing or wrong API token (see api.token in the data dir)')
      let matched: { route: Route; params: Record<string, string> }
      try {
        matched = this.match(req.method ?? 'GET', url.pathname)
      } catch (err) {
        throw this.authorized(req) ? err : unauthorized()
      }
      const { route, params } = matched
      if (!route.public && !this.authorized(req)) throw unauthorized()
      const body =
        !route.rawBody && (req.method === 'POST' || req.method === 'PUT') ? await readBody(req) : undefined
      const common = {
        params,
        query: url.searchParams,
        body,
        signal: controller.signal,
        host: req.headers.host ?? '',
      }
      const result = route.http
        ? await route.handler({ ...common, raw: req, res })
        : await route.handler(common)
      if (result === STREAMED) return
      sendJson(res, 200, result ?? {})
    } catch (err) {
      const { status, body } = this.failure(err)
      if (!res.headersSent) sendJson(res, status, body)
      else res.destroy()
    }
  }

  /**
   * A request that came over a channel (already authorized by its upgrade): the same routes and
   * answers as HTTP, checked in the same order (path, then method, then body), except for routes
   * that need the HTTP request itself. `body`: the frame's body type and bytes.
   */
  async answer(
    method: string,
    target: string,
    body: { type: number; bytes: Buffer },
    signal: AbortSignal,
    host: string,
  ): Promise<ApiAnswer> {
    try {
      // As HTTP reads req.url: dot segments resolved, escapes normalized, the query split off.
      const url = new URL(target, 'http://localhost')
      const { route, params } = this.match(method, url.pathname)
      if (route.http)
        throw new ApiError(
          400,
          'GN_HTTP_ONLY',
          `${method} ${url.pathname} streams or takes raw bytes: ask it over HTTP`,
        )
      const result = await route.handler({
        params,
        query: url.searchParams,
        body: method === 'POST' || method === 'PUT' ? decodeBody(body.type, body.bytes) : undefined,
        signal,
        host,
      })
      return { status: 200, body: result ?? {} }
    } catch (err) {
      return this.failure(err)
    }
  }

  /** An error as the API answers it; unexpected ones (whatever was thrown) are logged. */
  private failure(err: unknown): ApiAnswer {
    const status = err instanceof ApiError ? err.status : err instanceof GridnodeError ? 400 : 500
    if (status === 500) this.log.error({ err }, 'API handler failed')
    const body =
      err instanceof GridnodeError
        ? { error: err.toJSON() }
        : { error: { code: 'GN_INTERNAL', message: err instanceof Error ? err.message : String(err) } }
    return { status, body }
  }

  /**
   * `GET /v1/channel` with `Upgrade: gridnode-api/1` and the bearer token (no session cookie: a
   * page cannot open one) becomes a channel. Only such requests come here (shouldUpgradeCallback);
   * on a Node without that option (before 22.21 and 24.9) every request with an Upgrade header
   * does, and one for another path is refused.
   */
  private upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => {}) // a client resetting its connection is not the daemon's problem
    const refuse = (status: string, message: string) => {
      const body = JSON.stringify({ error: { code: 'GN_BAD_UPGRADE', message } })
      // The server keeps half-open connections, and an upgraded socket is no longer its to close:
      // close it once the answer is out, whatever the client does, and do not wait long for that.
      if (socket instanceof Socket) socket.setTimeout(5000, () => socket.destroy())
      socket.end(
        `HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
        () => socket.destroy(),
      )
    }
    if (!isChannelUpgrade(req))
      return refuse(
        '400 Bad Request',
        `only ${API_CHANNEL_PATH} with Upgrade: ${API_CHANNEL_PROTOCOL} upgrades; send other requests without an Upgrade header`,
      )
    if (!this.hasToken(req))
      return refuse('401 Unauthorized', 'missing or wrong API token (see api.token in the data dir)')
    if (this.channels.size >= MAX_CHANNELS)
      return refuse('503 Service Unavailable', `${MAX_CHANNELS} channels are open; use HTTP`)
    socket.write(
      `HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: ${API_CHANNEL_PROTOCOL}\r\n\r\n`,
    )
    const channel = new ServerChannel(socket, req.headers.host ?? '', this, this.log)
    this.channels.add(channel)
    channel.closed.then(() => this.channels.delete(channel))
    channel.start(head)
  }

  private match(method: string, path: string): { route: Route; params: Record<string, string> } {
    let pathMatched = false
    for (const route of this.routes) {
      const m = route.pattern.exec(path)
      if (!m) continue
      pathMatched = true
      if (route.method !== method) continue
      const params: Record<string, string> = {}
      route.keys.forEach((k, i) => {
        try {
          params[k] = decodeURIComponent(m[i + 1])
        } catch {
          throw new ApiError(400, 'GN_BAD_PATH', `malformed escape in ${path}`)
        }
      })
      return { route, params }
    }
    if (pathMatched) throw new ApiError(405, 'GN_METHOD', `${method} is not allowed on ${path}`)
    throw new ApiError(404, 'GN_NOT_FOUND', `no such API path: ${path}`)
  }
}

/**
 * The request's bytes, refused past API_MAX_BODY_BYTES. Plain stream events: an async iterator
 * over the request cost ~20 us more per request, a tenth of a small job's round trip.
 */
function readAll(req: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = []
    let size = 0
    const onData = (chunk: Buffer) => {
      size += chunk.length
      if (size > API_MAX_BODY_BYTES) {
        req.off('data', onData)
        req.destroy()
        reject(new ApiError(413, 'GN_TOO_LARGE', `request body over ${API_MAX_BODY_BYTES} bytes`))
        return
      }
      chunks.push(chunk)
    }
    req.on('data', onData)
    req.once('end', () => resolve(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)))
    req.once('error', reject)
    req.once('close', () => {
      if (!req.complete) reject(new ApiError(400, 'GN_ABORTED', 'the client went away mid-request'))
    })
  })
}

function isChannelUpgrade(req: IncomingMessage): boolean {
  return req.url === API_CHANNEL_PATH && req.headers.upgrade?.toLowerCase() === API_CHANNEL_PROTOCOL
}

/** A request's body, over HTTP or the channel: nothing when empty, bytes, or parsed JSON. */
function decodeBody(type: number, bytes: Buffer): unknown {
  if (bytes.byteLength === 0) return undefined
  if (type === BODY_BYTES) return new Uint8Array(bytes)
  try {
    return JSON.parse(bytes.toString('utf8'))
  } catch {
    throw new ApiError(400, 'GN_BAD_JSON', 'request body is not valid JSON')
  }
}

export function sendJson(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body)
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) })
  res.end(text)
}

async function readBody(req: IncomingMessage): Promise<unknown> {
  const bytes = (req.headers['content-type'] ?? '').startsWith('application/octet-stream')
  return decodeBody(bytes ? BODY_BYTES : BODY_JSON, await readAll(req))
}
