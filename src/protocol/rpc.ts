/**
 * The shape shared by the request/response protocols (steal, result, lease):
 * a request codec, a reply codec (which includes the error reply), a
 * dispatcher on the server and a RequestClient on the client.
 */
import type { ErrorReply, MessageCodec } from './message.ts'
import { toErrorReply } from './message.ts'
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
  return registrar.handle(
    spec.protocol,
    (stream, connection) => {
      const peerId = connection.remotePeer.toString()
      return serveRequests<Req, Rep>(stream, {
        name: spec.protocol,
        maxMessageBytes: spec.maxMessageBytes,
        decode: (bytes) => spec.requests.decode(bytes),
        encode: (reply) => spec.replies.encode(reply),
        handle: (req) => handlers.handle(peerId, req),
        errorReply: toErrorReply,
        timeoutMs,
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
