/**
 * gridnode's wire protocols: message schemas, codecs, size limits,
 * validation, stream handlers and clients. Knows bytes and peers, not policy.
 */
export * from './advert/codec.ts'
export * from './blob/codec.ts'
export * from './blob/handler.ts'
export * from './errors.ts'
export * from './lease/codec.ts'
export * from './lease/handler.ts'
export { type ErrorReply, type MessageCodec, SCHEMA_VERSION, setValidateOutgoing } from './message.ts'
export { PeerClients } from './pool.ts'
export * from './rate-limit.ts'
export * from './result/codec.ts'
export * from './result/handler.ts'
export {
  type ClientOptions,
  DEFAULT_SERVER_TIMEOUT_MS,
  RPC_STREAM_LIMITS,
  type RpcSpec,
  type ServerOptions,
} from './rpc.ts'
export { MAX_BATCH_JOBS, MAX_BATCH_TASKS, MAX_RESULTS, MAX_TASK_KEYS, MAX_VALUE_BYTES } from './schemas.ts'
export * from './steal/codec.ts'
export * from './steal/handler.ts'
export {
  type FramedStream,
  framed,
  type HandlerLimits,
  type OpenStream,
  type PeerConnection,
  type ProtocolHandler,
  type ProtocolRegistrar,
  RequestClient,
  type RequestClientOptions,
  type RequestOptions,
  type ServeOptions,
  serveRequests,
} from './stream.ts'

import { BLOB_PROTOCOL } from './blob/codec.ts'
import { LEASE_PROTOCOL } from './lease/codec.ts'
import { RESULT_PROTOCOL } from './result/codec.ts'
import { STEAL_PROTOCOL } from './steal/codec.ts'

/** Every stream protocol gridnode serves. */
export const PROTOCOLS = [STEAL_PROTOCOL, RESULT_PROTOCOL, LEASE_PROTOCOL, BLOB_PROTOCOL] as const
