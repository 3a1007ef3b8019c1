/** Serving and calling `/gridnode/lease/2.0.0`. */
import { type ClientOptions, type RpcSpec, registerRpc, rpcClient, type ServerOptions } from '../rpc.ts'
import type { OpenStream, ProtocolRegistrar, RequestClient, RequestOptions } from '../stream.ts'
import {
  type CancelAck,
  type CancelRequest,
  LEASE_MAX_MESSAGE_BYTES,
  LEASE_PROTOCOL,
  type LeaseAnswer,
  type LeaseProtocolReply,
  type LeaseProtocolRequest,
  type LeaseRequest,
  leaseReplyCodec,
  leaseReplyMatches,
  leaseRequestCodec,
} from './codec.ts'

export const leaseSpec: RpcSpec<LeaseProtocolRequest, LeaseProtocolReply> = {
  protocol: LEASE_PROTOCOL,
  maxMessageBytes: LEASE_MAX_MESSAGE_BYTES,
  requests: leaseRequestCodec,
  replies: leaseReplyCodec,
  matches: leaseReplyMatches,
}

export interface LeaseCallbacks {
  /** Owner side: a holder's heartbeat. */
  onLease(peerId: string, req: LeaseRequest): Promise<LeaseAnswer>
  /** Holder side: the owner cancelled a job. */
  onCancel(peerId: string, req: CancelRequest): Promise<CancelAck>
}

export function registerLeaseProtocol(
  registrar: ProtocolRegistrar,
  callbacks: LeaseCallbacks,
  options?: ServerOptions,
): Promise<void> {
  return registerRpc(
    registrar,
    leaseSpec,
    {
      async handle(peerId, req): Promise<LeaseProtocolReply> {
        if (req.t === 'lease') {
          const { drop, cancelledJobs } = await callbacks.onLease(peerId, { holdings: req.holdings })
          return { t: 'lease-answer', drop, cancelledJobs }
        }
        await callbacks.onCancel(peerId, { job: req.job })
        return { t: 'cancel-ack' }
      },
    },
    options,
  )
}

export type LeaseClientOptions = ClientOptions<LeaseProtocolRequest, LeaseProtocolReply>

/** Sends lease heartbeats and cancels to one peer over one long-lived stream. */
export class LeaseClient {
  private readonly client: RequestClient<LeaseProtocolRequest, LeaseProtocolReply>

  constructor(open: OpenStream, options: LeaseClientOptions = {}) {
    this.client = rpcClient(leaseSpec, open, options)
  }

  async lease(req: LeaseRequest, options?: RequestOptions): Promise<LeaseAnswer> {
    const rep = await this.client.request({ t: 'lease', holdings: req.holdings }, options)
    if (rep.t !== 'lease-answer') throw new Error('unreachable: reply type checked by the client')
    return { drop: rep.drop, cancelledJobs: rep.cancelledJobs }
  }

  async cancel(req: CancelRequest, options?: RequestOptions): Promise<CancelAck> {
    const rep = await this.client.request({ t: 'cancel', job: req.job }, options)
    if (rep.t !== 'cancel-ack') throw new Error('unreachable: reply type checked by the client')
    return {}
  }

  close(): void {
    this.client.close()
  }
}
