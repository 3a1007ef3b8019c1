/**
 * `/gridnode/steal/1.0.0`: an idle node asks a busy one for work
 * (steal → steal-reply), and an owner pushes a first batch to an idle peer
 * (push → push-ack). Custody of the tasks moves with the batch.
 */
import type { Accepts, Batch, Resources } from '../../domain/types.ts'
import { type ErrorReply, errorReplyFields, fields, messageCodec } from '../message.ts'
import { acceptsSchema, batch, MAX_BATCH_TASKS, resources } from '../schemas.ts'
import { optional, uint } from '../validate.ts'

export const STEAL_PROTOCOL = '/gridnode/steal/1.0.0'
/** Largest steal-protocol message (batches carry task inputs). */
export const STEAL_MAX_MESSAGE_BYTES = 16 * 1024 * 1024

/** "I can run up to `max` tasks needing at most `free`." */
export interface StealRequest {
  free: Resources
  max: number
  /** What the thief accepts (its trust policy): the victim grants only such tasks. Absent: everything. */
  accepts?: Accepts
}

/** The granted batch; empty when the victim has nothing to give. */
export interface StealReply {
  batch: Batch
}

export interface PushRequest {
  batch: Batch
}

/**
 * How many of the pushed tasks the receiver took (it may take none). A push
 * its policy refuses is answered with an error reply, code GN_POLICY_REFUSED,
 * whose message is the reason: nothing entered its custody.
 */
export const POLICY_REFUSED = 'GN_POLICY_REFUSED'

export interface PushAck {
  accepted: number
}

export type StealProtocolRequest = ({ t: 'steal' } & StealRequest) | ({ t: 'push' } & PushRequest)
export type StealProtocolReply = ({ t: 'steal-reply' } & StealReply) | ({ t: 'push-ack' } & PushAck)

export const stealRequestCodec = messageCodec<StealProtocolRequest>('steal', STEAL_MAX_MESSAGE_BYTES, {
  steal: fields({ free: resources, max: uint(MAX_BATCH_TASKS), accepts: optional(acceptsSchema) }),
  push: fields({ batch }),
})

export const stealReplyCodec = messageCodec<StealProtocolReply | ErrorReply>(
  'steal',
  STEAL_MAX_MESSAGE_BYTES,
  {
    'steal-reply': fields({ batch }),
    'push-ack': fields({ accepted: uint(MAX_BATCH_TASKS) }),
    error: errorReplyFields,
  },
)

/** Which reply answers which request. */
export function stealReplyMatches(req: StealProtocolRequest, rep: StealProtocolReply): boolean {
  return (req.t === 'steal' && rep.t === 'steal-reply') || (req.t === 'push' && rep.t === 'push-ack')
}
