/**
 * What a peer hears: how a command one NodeScheduler emits becomes the event
 * another NodeScheduler handles, and what the sender handles when the message
 * is lost or its peer is gone. The daemon (src/node/driver.ts, inbound.ts),
 * the simulator (simulations/strategies/gridnode.ts) and the property tests'
 * mesh (test/fakes/sim-net.ts) all carry messages with these functions; the
 * daemon's behaviour is the reference (it runs for real).
 *
 * Messages travel as requests and answers, the way the daemon's protocols do:
 *
 * | request      | receiver hears    | its answer (a command) | requester hears                   |
 * | ------------ | ----------------- | ---------------------- | --------------------------------- |
 * | send-steal   | steal-requested   | reply-steal            | steal-granted                     |
 * | push-batch   | batch-pushed      | refuse-push (or none)  | push-refused (nothing if accepted) |
 * | send-results | results-received  | ack-results            | results-acked                     |
 * | send-lease   | lease-received    | answer-lease           | lease-answered                    |
 * | send-cancel  | cancel-received   | none                   | nothing                           |
 *
 * When a request or its answer is lost (the stream broke, the peer is gone,
 * the request timed out) the requester hears `requestLost`: steal-failed,
 * push-failed, results-send-failed, or nothing for leases and cancels (the
 * next lease goes out on its interval). A responder that could not write its
 * answer hears `answerLost`: grant-failed when the grant carried tasks (it
 * still holds them), nothing otherwise. A grant that arrives after its
 * request gave up is still the thief's (`lateGrant`). Every event carries the
 * cause of the command it came from.
 *
 * Pure: no I/O, no clock (`at` is passed in), no allocation beyond the event.
 */
import type {
  Accepts,
  Batch,
  Command,
  CopyKey,
  CustodyPath,
  JobId,
  PeerKey,
  Resources,
  SchedulerEvent,
  TaskKey,
  TaskResult,
} from './types.ts'

/** Commands that are a request to one peer. */
export type RequestCommand = Extract<
  Command,
  { type: 'send-steal' | 'push-batch' | 'send-results' | 'send-lease' | 'send-cancel' }
>
/** Commands that answer a request the node is handling (written as that request's response). */
export type AnswerCommand = Extract<
  Command,
  { type: 'reply-steal' | 'refuse-push' | 'ack-results' | 'answer-lease' }
>

/** The request id of a steal grant that arrived after its request gave up: it matches no steal in flight. */
export const LATE_GRANT = 0

/** True for the commands that answer an inbound request (the transport writes them as its response). */
export function isAnswer(c: Command): c is AnswerCommand {
  const t = c.type
  return t === 'reply-steal' || t === 'ack-results' || t === 'answer-lease' || t === 'refuse-push'
}

/** True for the commands that are a request to one peer. */
export function isRequest(c: Command): c is RequestCommand {
  const t = c.type
  return (
    t === 'send-steal' ||
    t === 'push-batch' ||
    t === 'send-results' ||
    t === 'send-lease' ||
    t === 'send-cancel'
  )
}

// ---- the receiver ------------------------------------------------------------------

/**
 * How the payloads look once they crossed the wire: the daemon stamps custody
 * credentials on batches it hands off and verifies the paths leases and
 * results carry; the simulators stand in with handOff(TRUSTED_SIGNER) and
 * trustedHoldings / trustedResults.
 */
export interface Carried {
  batch(batch: Batch, from: PeerKey, to: PeerKey): Batch
  results(results: TaskResult[]): Array<TaskResult & { path?: CustodyPath }>
  holdings(
    holdings: Extract<Command, { type: 'send-lease' }>['holdings'],
  ): Array<CopyKey & { path?: CustodyPath }>
}

/**
 * The event the receiver of request `c` from `from` handles. `requestId` is
 * the receiver's own id for a steal (the daemon numbers inbound steals; its
 * answer and any grant-failed carry it).
 */
export function requestHeard(
  c: RequestCommand,
  from: PeerKey,
  requestId: number,
  carried: Carried,
  at: number,
): SchedulerEvent {
  switch (c.type) {
    case 'send-steal':
      return stealRequested(from, requestId, c, c.cause, at)
    case 'push-batch':
      return { type: 'batch-pushed', at, cause: c.cause, from, batch: carried.batch(c.batch, from, c.to) }
    case 'send-results':
      return { type: 'results-received', at, cause: c.cause, from, results: carried.results(c.results) }
    case 'send-lease':
      return { type: 'lease-received', at, cause: c.cause, from, holdings: carried.holdings(c.holdings) }
    case 'send-cancel':
      return cancelReceived(from, c.job, c.cause, at)
  }
}

/** A thief's steal request as its victim hears it (the thief's `accepts` travels with it). */
export function stealRequested(
  from: PeerKey,
  requestId: number,
  ask: { free: Resources; max: number; accepts?: Accepts },
  cause: string,
  at: number,
): SchedulerEvent {
  return ask.accepts === undefined
    ? { type: 'steal-requested', at, cause, from, requestId, free: ask.free, max: ask.max }
    : {
        type: 'steal-requested',
        at,
        cause,
        from,
        requestId,
        free: ask.free,
        max: ask.max,
        accepts: ask.accepts,
      }
}

export function cancelReceived(from: PeerKey, job: JobId, cause: string, at: number): SchedulerEvent {
  return { type: 'cancel-received', at, cause, from, job }
}

// ---- the answer --------------------------------------------------------------------

/** The batch the victim's commands grant to steal `requestId` from `to` (empty when it answered none). */
export function stealAnswer(commands: readonly Command[], to: PeerKey, requestId: number): Batch {
  for (const c of commands)
    if (c.type === 'reply-steal' && c.to === to && c.requestId === requestId) return c.batch
  return { jobs: [], tasks: [] }
}

/** The policy refusal among a receiver's commands for a push from `to`, or undefined (accepted). */
export function pushAnswer(commands: readonly Command[], to: PeerKey): string | undefined {
  for (const c of commands) if (c.type === 'refuse-push' && c.to === to) return c.reason
  return undefined
}

/** The tasks an owner's commands acknowledge to `to` (only those it accepted, after persisting them). */
export function resultsAnswer(commands: readonly Command[], to: PeerKey): TaskKey[] {
  let tasks: TaskKey[] | undefined
  for (const c of commands) {
    if (c.type !== 'ack-results' || c.to !== to) continue
    tasks = tasks === undefined ? c.tasks : tasks.concat(c.tasks)
  }
  return tasks ?? []
}

/** An owner's lease answer to `to` (nothing to drop when it gave none). */
export function leaseAnswer(
  commands: readonly Command[],
  to: PeerKey,
): { drop: CopyKey[]; cancelledJobs: JobId[] } {
  for (const c of commands)
    if (c.type === 'answer-lease' && c.to === to) return { drop: c.drop, cancelledJobs: c.cancelledJobs }
  return { drop: [], cancelledJobs: [] }
}

/**
 * What the requester of `c` hears when the answer `answer` arrives. A push
 * that was accepted is heard as nothing (custody moved when it was written).
 */
export function answerHeard(
  c: RequestCommand,
  answer: AnswerCommand | undefined,
  at: number,
): SchedulerEvent | undefined {
  switch (c.type) {
    case 'send-steal':
      return stealGranted(
        c.to,
        c.requestId,
        answer?.type === 'reply-steal' ? answer.batch : { jobs: [], tasks: [] },
        c.cause,
        at,
      )
    case 'push-batch':
      return answer?.type === 'refuse-push'
        ? pushRefused(c.to, c.batch, answer.reason, c.cause, at)
        : undefined
    case 'send-results':
      return resultsAcked(c.to, answer?.type === 'ack-results' ? answer.tasks : [], c.cause, at)
    case 'send-lease':
      return answer?.type === 'answer-lease'
        ? leaseAnswered(c.to, answer.drop, answer.cancelledJobs, c.cause, at)
        : leaseAnswered(c.to, [], [], c.cause, at)
    case 'send-cancel':
      return undefined
  }
}

export function stealGranted(
  from: PeerKey,
  requestId: number,
  batch: Batch,
  cause: string,
  at: number,
): SchedulerEvent {
  return { type: 'steal-granted', at, cause, from, requestId, batch }
}

/** A grant that arrived after its request gave up: the batch is the thief's all the same. */
export function lateGrant(from: PeerKey, batch: Batch, cause: string, at: number): SchedulerEvent {
  return { type: 'steal-granted', at, cause, from, requestId: LATE_GRANT, batch }
}

export function pushRefused(
  to: PeerKey,
  batch: Batch,
  reason: string,
  cause: string,
  at: number,
): SchedulerEvent {
  return { type: 'push-refused', at, cause, to, batch, reason }
}

export function resultsAcked(from: PeerKey, tasks: TaskKey[], cause: string, at: number): SchedulerEvent {
  return { type: 'results-acked', at, cause, from, tasks }
}

export function leaseAnswered(
  from: PeerKey,
  /** Each drop names the copy it refuses (see CopyKey): carried as it came. */
  drop: CopyKey[],
  cancelledJobs: JobId[],
  cause: string,
  at: number,
): SchedulerEvent {
  return { type: 'lease-answered', at, cause, from, drop, cancelledJobs }
}

// ---- losses ------------------------------------------------------------------------

/**
 * What the requester of `c` hears when the request or its answer is lost:
 * the stream broke, the peer is gone or refused it, the request timed out.
 * Leases and cancels are heard as nothing (the next lease goes out on its
 * interval; a cancel is also carried by the lease answer).
 */
export function requestLost(c: RequestCommand, reason: string, at: number): SchedulerEvent | undefined {
  switch (c.type) {
    case 'send-steal':
      return { type: 'steal-failed', at, cause: c.cause, from: c.to, requestId: c.requestId, reason }
    case 'push-batch':
      return pushFailed(c.to, c.batch, reason, c.cause, at)
    case 'send-results':
      return resultsSendFailed(c.to, c.results, c.cause, at)
    case 'send-lease':
    case 'send-cancel':
      return undefined
  }
}

export function pushFailed(
  to: PeerKey,
  batch: Batch,
  reason: string,
  cause: string,
  at: number,
): SchedulerEvent {
  return { type: 'push-failed', at, cause, to, batch, reason }
}

/** Results that did not reach their owner (or whose ack did not come back): the holder resends them. */
export function resultsSendFailed(
  to: PeerKey,
  results: readonly TaskKey[],
  cause: string,
  at: number,
): SchedulerEvent {
  const tasks = new Array<TaskKey>(results.length)
  for (let i = 0; i < results.length; i++) {
    const r = results[i]
    tasks[i] = { job: r.job, index: r.index, attempt: r.attempt }
  }
  return { type: 'results-send-failed', at, cause, to, tasks }
}

/**
 * What a responder hears when it could not write its answer `a`: a grant
 * with tasks stays its own (grant-failed); other answers are heard as
 * nothing (the requester's loss says it).
 */
export function answerLost(a: AnswerCommand, at: number): SchedulerEvent | undefined {
  if (a.type !== 'reply-steal' || a.batch.tasks.length === 0) return undefined
  return { type: 'grant-failed', at, cause: a.cause, to: a.to, requestId: a.requestId, batch: a.batch }
}
