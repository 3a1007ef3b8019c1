/**
 * `/gridnode/lease/2.0.0`: a holder's heartbeat to an owner listing the
 * owner's tasks it holds, each naming the copy held (lease → lease-answer:
 * copies to drop, jobs that were cancelled), and an owner telling a holder a
 * job was cancelled (cancel → cancel-ack). 2.0.0: lease entries and drops
 * carry `copy` (1.0.0 named task + attempt only, so a drop could remove a
 * later copy of the same attempt; the two do not interoperate).
 */
import type { CopyKey, HeldKey, JobId } from '../../domain/types.ts'
import { type ErrorReply, errorReplyFields, fields, messageCodec } from '../message.ts'
import { copyKeys, heldKeys, id } from '../schemas.ts'
import { arr } from '../validate.ts'

export const LEASE_PROTOCOL = '/gridnode/lease/2.0.0'
export const LEASE_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
export const MAX_CANCELLED_JOBS = 4096

export interface LeaseRequest {
  /** Each with the custody credentials of that attempt, when the holder has some. */
  holdings: HeldKey[]
}

export interface LeaseAnswer {
  /**
   * Held copies the owner no longer wants run (finished elsewhere, re-queued with a new attempt,
   * custody moved on), each naming the copy the lease listed (always present on the wire).
   */
  drop: CopyKey[]
  cancelledJobs: JobId[]
}

export interface CancelRequest {
  job: JobId
}

export type CancelAck = Record<string, never>

export type LeaseProtocolRequest = ({ t: 'lease' } & LeaseRequest) | ({ t: 'cancel' } & CancelRequest)
export type LeaseProtocolReply = ({ t: 'lease-answer' } & LeaseAnswer) | { t: 'cancel-ack' }

export const leaseRequestCodec = messageCodec<LeaseProtocolRequest>('lease', LEASE_MAX_MESSAGE_BYTES, {
  lease: fields({ holdings: heldKeys }),
  cancel: fields({ job: id }),
})

export const leaseReplyCodec = messageCodec<LeaseProtocolReply | ErrorReply>(
  'lease',
  LEASE_MAX_MESSAGE_BYTES,
  {
    'lease-answer': fields({ drop: copyKeys, cancelledJobs: arr(id, MAX_CANCELLED_JOBS) }),
    'cancel-ack': fields({}),
    error: errorReplyFields,
  },
)

export function leaseReplyMatches(req: LeaseProtocolRequest, rep: LeaseProtocolReply): boolean {
  return (req.t === 'lease' && rep.t === 'lease-answer') || (req.t === 'cancel' && rep.t === 'cancel-ack')
}
