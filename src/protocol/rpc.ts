/**
 * The shape shared by the request/response protocols (steal, result, lease):
 * a request codec, a reply codec (which includes the error reply), a
 * dispatcher on the server and a RequestClient on the client.
 */
import type { ErrorReply, MessageCodec } from './message.ts'
import { toErrorReply } from './message.ts'
import {
  type Clock,
  type CostBudget,
  costBudgetOf,
  DEFAULT_FLOOD_CLOSE_AFTER,
  DEFAULT_IDLE_TIMEOUT_MS,
  type InboundStats,
  inboundStatsOf,
  RateLimiter,
  type RateLimits,
} from './rate-limit.ts'
import {
  type HandlerLimits,
  type OpenStream,
  type ProtocolRegistrar,
  RequestClient,
  type RequestClientOptions,
  serveRequests,
} from './stream.ts'

/** Streams per connection and protocol: one long-lived stream each way, plus slack for reopening. */
export const RPC_STREAM_LIMITS: Required<HandlerLimits> = { maxInboundStreams: 8, maxOutboundStreams: 8 }
export const DEFAULT_SERVER_TIMEOUT_MS = 30_000

export interface RpcSpec<Req extends { t: string }, Rep extends { t: string }> {
  protocol: string
  maxMessageBytes: number
  requests: MessageCodec<Req>
  replies: MessageCodec<Rep | ErrorReply>
  matches(req: Req, rep: Rep): boolean
}

export interface ServerOptions {
  /** Per-frame receive, per-request handling and per-reply write limit (ms). Default 30 s. */
  timeoutMs?: number
  /** Failures of streams (a peer's bad frame, a timeout, a handler error). The server keeps running. */
  onError?(peerId: string, err: Error): void
  /** Stream caps per connection; defaults RPC_STREAM_LIMITS. */
  limits?: HandlerLimits
  /**
   * Per-peer rate limits by request kind (steal, push, lease, cancel,
   * results, blob-get), over DEFAULT_RATE_LIMITS; `null` turns one off.
   * Ignored when `limiter` is given.
   */
  rateLimits?: Partial<RateLimits>
  /** One limiter shared by several servers; default: a fresh one from `rateLimits`. */
  limiter?: RateLimiter
  /** Counters to update; default the registrar's own (inboundStatsOf(registrar)), shared by its servers. */
  stats?: InboundStats
  /** Close a long-lived inbound stream after this long without a frame (ms). Default 60 s; 0: never. */
  idleTimeoutMs?: number
  /** Close a stream once this many of its requests were rate-limited within one second. Default 200; 0: never. */
  floodCloseAfter?: number
  /** Clock for the limits (ms); default performance.now. */
  clock?: Clock
  /**
   * What each peer's requests may cost this node's event loop; default the registrar's own
   * (costBudgetOf(registrar)), shared by its servers.
   */
  cost?: CostBudget
}

export interface RpcHandlers<Req, Rep> {
  handle(peerId: string, req: Req): Promise<Rep>
  afterWrite?(peerId: string, req: Req, rep: Rep, err?: Error): void
}

export function registerRpc<Req extends { t: string }, Rep extends { t: string }>(
  registrar: ProtocolRegistrar,
  spec: RpcSpec<Req, Rep>,
  handlers: RpcHandlers<Req, Rep>,
  options: ServerOptions = {},
): Promise<void> {
  const timeoutMs = options.timeoutMs ?? DEFAULT_SERVER_TIMEOUT_MS
  const clock = options.clock ?? (() => performance.now())
  const limiter = options.limiter ?? new RateLimiter(options.rateLimits, clock)
  const stats = options.stats ?? inboundStatsOf(registrar)
  const budget = options.cost ?? costBudgetOf(registrar)
  return registrar.handle(
    spec.protocol,
    (stream, connection) => {
      const peerId = connection.remotePeer.toString()
      const cost = { waitMs: () => budget.waitMs(peerId), charge: (ms: number) => budget.charge(peerId, ms) }
      return serveRequests<Req, Rep>(stream, {
        name: spec.protocol,
        maxMessageBytes: spec.maxMessageBytes,
        decode: (bytes) => spec.requests.decode(bytes),
        encode: (reply) => spec.replies.encode(reply),
        handle: (req) => handlers.handle(peerId, req),
        errorReply: toErrorReply,
        timeoutMs,
        idleTimeoutMs: options.idleTimeoutMs ?? DEFAULT_IDLE_TIMEOUT_MS,
        kindOf: (req) => req.t,
        admit: (req) => limiter.take(peerId, req.t),
        floodCloseAfter: options.floodCloseAfter ?? DEFAULT_FLOOD_CLOSE_AFTER,
        stats,
        clock,
        cost,
        onError: (err) => options.onError?.(peerId, err),
        afterWrite: handlers.afterWrite && ((req, rep, err) => handlers.afterWrite?.(peerId, req, rep, err)),
      })
    },
    { ...RPC_STREAM_LIMITS, ...options.limits },
  )
}

export type ClientOptions<Req extends { t: string }, Rep extends { t: string }> = Pick<
  RequestClientOptions<Req, Rep>,
  'timeoutMs' | 'openTimeoutMs' | 'maxPending' | 'maxInFlightBytes' | 'idleCloseMs' | 'onLateReply'
>

export function rpcClient<Req extends { t: string }, Rep extends { t: string }>(
  spec: RpcSpec<Req, Rep>,
  open: OpenStream,
  options: ClientOptions<Req, Rep> = {},
): RequestClient<Req, Rep> {
  return new RequestClient<Req, Rep>({
    ...options,
    name: spec.protocol,
    open,
    maxMessageBytes: spec.maxMessageBytes,
    encode: (req) => spec.requests.encode(req),
    decode: (bytes) => spec.replies.decode(bytes),
    matches: spec.matches,
  })
}
