/**
 * Serving and calling `/gridnode/steal/1.0.0`.
 *
 * Victim side: `onStealRequest` picks a batch (the scheduler's reply-steal),
 * then `onStealReplyWritten` says whether it reached the stream: only then may
 * the victim forget the batch; with an error it still holds it (grant-failed).
 */
import type { Batch } from '../../domain/types.ts'
import { type ClientOptions, type RpcSpec, registerRpc, rpcClient, type ServerOptions } from '../rpc.ts'
import type { OpenStream, ProtocolRegistrar, RequestClient, RequestOptions } from '../stream.ts'
import {
  type PushAck,
  type PushRequest,
  STEAL_MAX_MESSAGE_BYTES,
  STEAL_PROTOCOL,
  type StealProtocolReply,
  type StealProtocolRequest,
  type StealReply,
  type StealRequest,
  stealReplyCodec,
  stealReplyMatches,
  stealRequestCodec,
} from './codec.ts'

export const stealSpec: RpcSpec<StealProtocolRequest, StealProtocolReply> = {
  protocol: STEAL_PROTOCOL,
  maxMessageBytes: STEAL_MAX_MESSAGE_BYTES,
  requests: stealRequestCodec,
  replies: stealReplyCodec,
  matches: stealReplyMatches,
}

export interface StealCallbacks {
  onStealRequest(peerId: string, req: StealRequest): Promise<StealReply>
  /** The granted batch was handed to the stream (no `err`), or could not be (`err`: the victim keeps it). */
  onStealReplyWritten?(peerId: string, reply: StealReply, err?: Error): void
  onPush(peerId: string, req: PushRequest): Promise<PushAck>
}

export function registerStealProtocol(
  registrar: ProtocolRegistrar,
  callbacks: StealCallbacks,
  options?: ServerOptions,
): Promise<void> {
  return registerRpc(
    registrar,
    stealSpec,
    {
      async handle(peerId, req): Promise<StealProtocolReply> {
        if (req.t === 'steal') {
          const { free, max, accepts } = req
          const ask = accepts === undefined ? { free, max } : { free, max, accepts }
          const { batch } = await callbacks.onStealRequest(peerId, ask)
          return { t: 'steal-reply', batch }
        }
        const { accepted } = await callbacks.onPush(peerId, { batch: req.batch })
        return { t: 'push-ack', accepted }
      },
      afterWrite(peerId, _req, rep, err) {
        if (rep.t === 'steal-reply') callbacks.onStealReplyWritten?.(peerId, { batch: rep.batch }, err)
      },
    },
    options,
  )
}

export type StealClientOptions = ClientOptions<StealProtocolRequest, StealProtocolReply> & {
  /**
   * A steal whose caller gave up (signal aborted) was granted after all: the
   * batch is ours now. Feed it to the scheduler (e.g. as a batch-pushed).
   */
  onLateBatch?(batch: Batch): void
}

/** Steals from and pushes to one peer over one long-lived stream. */
export class StealClient {
  private readonly client: RequestClient<StealProtocolRequest, StealProtocolReply>

  constructor(open: OpenStream, options: StealClientOptions = {}) {
    const { onLateBatch, ...rest } = options
    this.client = rpcClient(stealSpec, open, {
      ...rest,
      onLateReply: (req, rep) => {
        if (rep.t === 'steal-reply' && rep.batch.tasks.length > 0) onLateBatch?.(rep.batch)
        rest.onLateReply?.(req, rep)
      },
    })
  }

  async steal(req: StealRequest, options?: RequestOptions): Promise<StealReply> {
    const msg: StealProtocolRequest = { t: 'steal', free: req.free, max: req.max }
    if (req.accepts !== undefined) msg.accepts = req.accepts
    const rep = await this.client.request(msg, options)
    if (rep.t !== 'steal-reply') throw new Error('unreachable: reply type checked by the client')
    return { batch: rep.batch }
  }

  async push(req: PushRequest, options?: RequestOptions): Promise<PushAck> {
    const rep = await this.client.request({ t: 'push', batch: req.batch }, options)
    if (rep.t !== 'push-ack') throw new Error('unreachable: reply type checked by the client')
    return { accepted: rep.accepted }
  }

  close(): void {
    this.client.close()
  }
}
