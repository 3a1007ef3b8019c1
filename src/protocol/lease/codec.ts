/**
 * `/gridnode/lease/1.0.0`: a holder's heartbeat to an owner listing the
 * owner's tasks it holds (lease → lease-answer: tasks to drop, jobs that were
 * cancelled), and an owner telling a holder a job was cancelled
 * (cancel → cancel-ack).
 */
import type { HeldKey, JobId, TaskKey } from '../../scheduler/types.ts'
import { type ErrorReply, errorReplyFields, fields, messageCodec } from '../message.ts'
import { heldKeys, id, taskKeys } from '../schemas.ts'
import { arr } from '../validate.ts'

export const LEASE_PROTOCOL = '/gridnode/lease/1.0.0'
export const LEASE_MAX_MESSAGE_BYTES = 4 * 1024 * 1024
export const MAX_CANCELLED_JOBS = 4096

export interface LeaseRequest {
  /** Each with the custody credentials of that attempt, when the holder has some. */
  holdings: HeldKey[]
}

export interface LeaseAnswer {
  /** Held tasks the owner no longer wants run (finished elsewhere, re-queued with a new attempt). */
  drop: TaskKey[]
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
    'lease-answer': fields({ drop: taskKeys, cancelledJobs: arr(id, MAX_CANCELLED_JOBS) }),
    'cancel-ack': fields({}),
    error: errorReplyFields,
  },
)

export function leaseReplyMatches(req: LeaseProtocolRequest, rep: LeaseProtocolReply): boolean {
  return (req.t === 'lease' && rep.t === 'lease-answer') || (req.t === 'cancel' && rep.t === 'cancel-ack')
}
