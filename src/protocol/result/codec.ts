/**
 * `/gridnode/result/1.0.0`: a holder sends finished tasks' outcomes to their
 * owner (results → results-ack). The owner acknowledges the task keys it has
 * stored; duplicates are acknowledged too (it ignores them by task id).
 */
import type { TaskKey, TaskResult } from '../../domain/types.ts'
import { type ErrorReply, errorReplyFields, fields, messageCodec } from '../message.ts'
import { MAX_RESULTS, taskKeys, taskResult } from '../schemas.ts'
import { arr } from '../validate.ts'

export const RESULT_PROTOCOL = '/gridnode/result/1.0.0'
export const RESULT_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

export interface ResultsRequest {
  results: TaskResult[]
}

export interface ResultsAck {
  tasks: TaskKey[]
}

export type ResultProtocolRequest = { t: 'results' } & ResultsRequest
export type ResultProtocolReply = { t: 'results-ack' } & ResultsAck

export const resultRequestCodec = messageCodec<ResultProtocolRequest>('result', RESULT_MAX_MESSAGE_BYTES, {
  results: fields({ results: arr(taskResult, MAX_RESULTS) }),
})

export const resultReplyCodec = messageCodec<ResultProtocolReply | ErrorReply>(
  'result',
  RESULT_MAX_MESSAGE_BYTES,
  {
    'results-ack': fields({ tasks: taskKeys }),
    error: errorReplyFields,
  },
)

export function resultReplyMatches(_req: ResultProtocolRequest, rep: ResultProtocolReply): boolean {
  return rep.t === 'results-ack'
}
