/**
 * Inbound protocol requests: what the daemon does when a peer asks it
 * something (a steal, a push, results, a lease, a cancel, a blob). Each
 * request is checked against its sender, becomes one scheduler event (built
 * by src/scheduler/hearing.ts, as in the simulators), and its answer is what
 * the scheduler's commands for that event say (the driver carries out the
 * rest of them). Separate from the driver, which only wires things together.
 */
import { GridnodeError } from '../errors.ts'
import type { BlobStore } from '../executor/index.ts'
import {
  registerBlobProtocol,
  registerLeaseProtocol,
  registerResultProtocol,
  registerStealProtocol,
} from '../protocol/index.ts'
import type { CostBudget } from '../protocol/rate-limit.ts'
import { POLICY_REFUSED } from '../protocol/steal/codec.ts'
import {
  answerLost,
  cancelReceived,
  leaseAnswer,
  pushAnswer,
  resultsAnswer,
  stealAnswer,
  stealRequested,
} from '../scheduler/hearing.ts'
import type { SchedulerStats } from '../scheduler/index.ts'
import type {
  Batch,
  Command,
  CopyKey,
  CustodyPath,
  HeldKey,
  JobSpec,
  SchedulerEvent,
  TaskKey,
  TaskResult,
} from '../scheduler/types.ts'
import type { Clock } from './clock.ts'
import type { GridLibp2p } from './create-node.ts'
import type { CustodyCredentialsService } from './custody-credentials.ts'
import { FilesService } from './files/service.ts'
import type { Logger } from './logger.ts'

/** What inbound handling needs from the node (the driver provides it). */
export interface InboundHost {
  readonly self: string
  /**
   * Whether a peer is a member now. Streams are gated when they open; this is asked of every
   * request too, so a peer revoked while its long-lived streams stay open gets nothing more.
   */
  isMember(peer: string): boolean
  readonly log: Logger
  readonly clock: Clock
  /** Feeds one event to the scheduler; returns its commands (already carried out). */
  feed(event: SchedulerEvent): Command[]
  stats(): SchedulerStats
  /** Whether the scheduler could use a verified custody path for this key from `from`. */
  needsPath(from: string, key: CopyKey, result: boolean): boolean
  /** Whether a result from `from` for `key` may bring its outputs here (see Owner.mayBring). */
  mayBring(from: string, key: TaskKey, hasPath: boolean): boolean
  creds(): CustodyCredentialsService | undefined
  /** The batch as it leaves for `to`, with custody credentials. */
  stamp(batch: Batch, to: string): Batch
  /** Why a push from `from` is refused (not a member, a job it does not own), or undefined. */
  pushRefusal(from: string, batch: Batch): string | undefined
  /** A push was refused before it reached the scheduler (counted in the driver's stats). */
  refusedPush(): void
  files(): FilesService | undefined
  /** A job owned here, by id (results bring their outputs in only for those). */
  ownedJob(id: string): JobSpec | undefined
  /** Resolves when every result handed to the store so far is written. */
  flushed(): Promise<void>
  blobs(): BlobStore
  /** Blob bytes served to a peer (metrics). */
  served(bytes: number): void
  /** What each peer's steal, result and lease requests may cost the event loop (shared by the three). */
  cost: CostBudget
}

/** Registers the steal, result, lease and blob protocol handlers. */
export async function registerInbound(node: GridLibp2p, host: InboundHost): Promise<void> {
  const log = host.log
  const clock = host.clock
  let requestIds = 0
  /** Steal grants as written (stamped with credentials) → the scheduler's reply (the batch it gave). */
  const grants = new WeakMap<Batch, Extract<Command, { type: 'reply-steal' }>>()
  /** Refuses a request of a peer that is no member (any more): revoked, or its certificate expired. */
  const member = (from: string) => {
    if (!host.isMember(from))
      throw new GridnodeError(
        'GN_NOT_A_MEMBER',
        'not a member of this mesh (revoked, or its certificate expired)',
      )
  }
  const onError = (peer: string, err: Error) =>
    log.debug({ peer, err: err.message }, 'closed a stream after a protocol error')

  /**
   * The verified custody path a lease or result from `from` attaches for
   * `key`, when the scheduler could use one (not on the fast path: the
   * recorded holder needs none, so most messages cost no check at all).
   */
  const pathFor = (
    from: string,
    key: TaskKey & { copy?: number },
    custody: HeldKey['custody'],
    result: boolean,
    budget: { checks: number },
  ): CustodyPath | undefined => {
    const creds = host.creds()
    if (custody === undefined || creds === undefined) return undefined
    const k = { job: key.job, index: key.index, attempt: key.attempt }
    // A lease entry's copy (checked against its credentials at decode) decides too.
    const named = key.copy === undefined ? k : { ...k, copy: key.copy }
    if (!host.needsPath(from, named, result)) return undefined
    // Past the message's budget of signature checks, credentials count as absent (the claim is refused).
    if (--budget.checks < 0) return undefined
    const path = creds.path(k, custody)
    if (path === undefined) log.debug({ peer: from, ...k }, 'custody credentials did not verify')
    return path
  }

  await registerStealProtocol(
    node,
    {
      onStealRequest: async (from, req) => {
        member(from)
        const requestId = ++requestIds
        const commands = host.feed(stealRequested(from, requestId, req, `steal:${from}`, clock.now()))
        const batch = stealAnswer(commands, from, requestId)
        const stamped = host.stamp(batch, from)
        if (batch.tasks.length > 0)
          grants.set(stamped, { type: 'reply-steal', cause: `steal:${from}`, to: from, requestId, batch })
        return { batch: stamped }
      },
      onStealReplyWritten: (_to, reply, err) => {
        const grant = grants.get(reply.batch)
        // The batch as the scheduler gave it: the victim keeps its own credentials, not the thief's.
        const lost = err && grant !== undefined ? answerLost(grant, clock.now()) : undefined
        if (lost !== undefined) host.feed(lost)
      },
      onPush: async (from, req) => {
        member(from)
        const refusal = host.pushRefusal(from, req.batch)
        if (refusal !== undefined) {
          host.refusedPush()
          log.warn({ peer: from, tasks: req.batch.tasks.length, reason: refusal }, 'refused a push')
          throw new GridnodeError('GN_PUSH_REFUSED', `push refused: ${refusal}`)
        }
        const before = host.stats().refusedPushes
        const commands = host.feed({
          type: 'batch-pushed',
          at: clock.now(),
          cause: `push:${from}`,
          from,
          batch: req.batch,
        })
        if (host.stats().refusedPushes !== before) throw new GridnodeError('GN_PUSH_REFUSED', 'push refused')
        const policyRefusal = pushAnswer(commands, from)
        if (policyRefusal !== undefined) {
          log.info({ peer: from, reason: policyRefusal }, 'refused a push (policy)')
          throw new GridnodeError(POLICY_REFUSED, policyRefusal)
        }
        return { accepted: req.batch.tasks.length }
      },
    },
    { onError, cost: host.cost },
  )
  await registerResultProtocol(
    node,
    {
      onResults: async (from, req) => {
        member(from)
        const budget = { checks: MAX_PATH_CHECKS }
        let results: Array<TaskResult & { path?: CustodyPath }> = firstOf(req.results, attemptKey).kept.map(
          ({ custody, ...r }) => {
            const path = pathFor(from, r, custody, true, budget)
            return path === undefined ? r : { ...r, path }
          },
        )
        // Outputs come into our blob store before the scheduler (and so the ack) sees the result,
        // but only from a sender that could report it: no fetching on the word of anyone else.
        const files = host.files()
        const bringing = results.filter((r) => host.mayBring(from, r, r.path !== undefined))
        if (files !== undefined && FilesService.needsIntake(bringing)) {
          const specs = new Map<string, JobSpec | undefined>()
          const jobOf = (id: string) => {
            if (!specs.has(id)) specs.set(id, host.ownedJob(id))
            return specs.get(id)
          }
          const brought = await files.intake(from, bringing, jobOf)
          const byResult = new Map(bringing.map((r, i) => [r, brought[i]]))
          results = results.map((r) => byResult.get(r) ?? r)
        }
        const before = host.stats().refusedResults
        const commands = host.feed({
          type: 'results-received',
          at: clock.now(),
          cause: `results:${from}`,
          from,
          results,
        })
        const refused = host.stats().refusedResults - before
        if (refused > 0)
          log.warn(
            { peer: from, refused, of: results.length },
            'dropped results of tasks the sender never held',
          )
        // Acknowledge only what is written: the store flush precedes the answer.
        await host.flushed()
        return { tasks: resultsAnswer(commands, from) }
      },
    },
    { onError, cost: host.cost },
  )
  await registerLeaseProtocol(
    node,
    {
      onLease: async (from, req) => {
        member(from)
        const budget = { checks: MAX_PATH_CHECKS }
        const { kept, repeats } = firstOf(req.holdings, copyKey)
        const holdings = kept.map(({ custody, ...k }) => {
          const path = pathFor(from, k, custody, false, budget)
          return path === undefined ? k : { ...k, path }
        })
        const before = host.stats().refusedClaims
        const commands = host.feed({
          type: 'lease-received',
          at: clock.now(),
          cause: `lease:${from}`,
          from,
          holdings,
        })
        const refused = host.stats().refusedClaims - before
        // Debug: a lease that crossed its holder's hand-off on the wire is refused the same way.
        if (refused > 0)
          log.debug({ peer: from, refused, of: holdings.length }, 'refused custody claims nobody handed over')
        const answer = leaseAnswer(commands, from)
        // A repeat gets its first entry's answer, unchecked: an honest holder can name one copy
        // twice (held again, and its result for that copy still unacked), and a drop for the
        // repeat alone would make it drop what it holds.
        if (repeats.length > 0) {
          const dropped = new Set(answer.drop.map(copyKey))
          for (const { job, index, attempt, copy } of repeats)
            if (dropped.has(copyKey({ job, index, attempt, copy })))
              answer.drop.push({ job, index, attempt, copy })
        }
        return answer
      },
      onCancel: async (from, req) => {
        member(from)
        host.feed(cancelReceived(from, req.job, `cancel:${from}`, clock.now()))
        return {}
      },
    },
    { onError, cost: host.cost },
  )
  await registerBlobProtocol(
    node,
    {
      getBlob: async (_peer, hash) => {
        const bytes = await host.blobs().get(hash)
        if (bytes) host.served(bytes.byteLength)
        return bytes
      },
      getRange: (_peer, hash, offset, length) =>
        host.files()?.range(hash, offset, length) ?? Promise.resolve(undefined),
      getPieces: (_peer, hash) => host.files()?.pieceMap(hash) ?? Promise.resolve(undefined),
    },
    { onError },
  )
}

/**
 * Credentials checked for one lease or results message at most: a check is a signature
 * verification or more (~50 us), and an honest message needs one per task whose custody moved
 * since the last (a steal's batch is at most 1,024 tasks). Beyond it, entries count as carrying
 * none. A member listing one task 15,000 times, each with a link it signed itself, kept an
 * owner's event loop busy for seconds per message.
 */
export const MAX_PATH_CHECKS = 4096

/**
 * Each entry once per message, the first (`kept`), and the others (`repeats`): one copy of an
 * attempt (leases) or one attempt (results) is checked once, however often a message names it.
 */
function firstOf<T>(entries: T[], key: (e: T) => string): { kept: T[]; repeats: T[] } {
  const seen = new Set<string>()
  const kept: T[] = []
  const repeats: T[] = []
  for (const e of entries) {
    const k = key(e)
    if (seen.has(k)) repeats.push(e)
    else {
      seen.add(k)
      kept.push(e)
    }
  }
  return { kept, repeats }
}

const copyKey = (e: { job: string; index: number; attempt: number; copy?: number }) =>
  `${e.index}:${e.attempt}:${e.copy}:${e.job}`
const attemptKey = (e: { job: string; index: number; attempt: number }) => `${e.index}:${e.attempt}:${e.job}`
