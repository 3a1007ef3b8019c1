/** Serving and calling `/gridnode/result/1.0.0`. */
import { type ClientOptions, type RpcSpec, registerRpc, rpcClient, type ServerOptions } from '../rpc.ts'
import type { OpenStream, ProtocolRegistrar, RequestClient, RequestOptions } from '../stream.ts'
import {
  RESULT_MAX_MESSAGE_BYTES,
  RESULT_PROTOCOL,
  type ResultProtocolReply,
  type ResultProtocolRequest,
  type ResultsAck,
  type ResultsRequest,
  resultReplyCodec,
  resultReplyMatches,
  resultRequestCodec,
} from './codec.ts'

export const resultSpec: RpcSpec<ResultProtocolRequest, ResultProtocolReply> = {
  protocol: RESULT_PROTOCOL,
  maxMessageBytes: RESULT_MAX_MESSAGE_BYTES,
  requests: resultRequestCodec,
  replies: resultReplyCodec,
  matches: resultReplyMatches,
}

export interface ResultCallbacks {
  /** Owner side: store the outcomes, then acknowledge the task keys that are safe to forget. */
  onResults(peerId: string, req: ResultsRequest): Promise<ResultsAck>
}

export function registerResultProtocol(
  registrar: ProtocolRegistrar,
  callbacks: ResultCallbacks,
  options?: ServerOptions,
): Promise<void> {
  return registerRpc(
    registrar,
    resultSpec,
    {
      async handle(peerId, req): Promise<ResultProtocolReply> {
        const { tasks } = await callbacks.onResults(peerId, { results: req.results })
        return { t: 'results-ack', tasks }
      },
    },
    options,
  )
}

export type ResultClientOptions = ClientOptions<ResultProtocolRequest, ResultProtocolReply>

/** Sends results to one owner over one long-lived stream. */
export class ResultClient {
  private readonly client: RequestClient<ResultProtocolRequest, ResultProtocolReply>

  constructor(open: OpenStream, options: ResultClientOptions = {}) {
    this.client = rpcClient(resultSpec, open, options)
  }

  async send(req: ResultsRequest, options?: RequestOptions): Promise<ResultsAck> {
    const rep = await this.client.request({ t: 'results', results: req.results }, options)
    return { tasks: rep.tasks }
  }

  close(): void {
    this.client.close()
  }
}
