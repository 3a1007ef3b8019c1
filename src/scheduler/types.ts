/**
 * The scheduler's events and commands: plain data only. Nothing here knows
 * about sockets, clocks or Node; the daemon (src/node/driver.ts) and the
 * simulator (simulations/) both speak it. The vocabulary they carry (jobs,
 * tasks, results, adverts) is src/domain/types.ts, re-exported here.
 *
 * Peers are opaque string keys (the daemon uses peer ID strings). Times are
 * milliseconds on whatever clock the driver uses (wall clock in the daemon,
 * virtual time in the simulator) and arrive inside events.
 */

import type {
  Accepts,
  Batch,
  CopyKey,
  CustodyPath,
  HeldKey,
  JobId,
  JobProgress,
  JobSpec,
  JobStatus,
  NodePolicy,
  PeerKey,
  Resources,
  SchedulerAdvert,
  TaskDescriptor,
  TaskInput,
  TaskKey,
  TaskOutcome,
  TaskResult,
} from '../domain/types.ts'

export * from '../domain/types.ts'

// ---------------------------------------------------------------------------
// Events in. Past tense: facts. Every event has the time `at` and a `cause`
// id that is copied into the commands it produces.

export type SchedulerEvent =
  /** Time passed; handle deadlines up to `at`. */
  | { type: 'tick'; at: number; cause: string }
  | { type: 'job-submitted'; at: number; cause: string; job: JobSpec; tasks: TaskInput[] }
  /**
   * An owner restarted and found this unfinished job in its store. Tasks in
   * `finished` have a stored outcome (value or final error); the rest are in
   * doubt: holders get a grace period to claim them by lease before they are
   * re-queued.
   */
  | {
      type: 'job-restored'
      at: number
      cause: string
      job: JobSpec
      tasks: TaskInput[]
      finished: Array<{ index: number; ok: boolean; value?: Uint8Array }>
    }
  | { type: 'job-cancelled'; at: number; cause: string; job: JobId }
  | {
      type: 'advert-received'
      at: number
      cause: string
      peer: PeerKey
      advert: SchedulerAdvert
      rttMs?: number
    }
  | { type: 'peer-connected'; at: number; cause: string; peer: PeerKey }
  /** Connection closed or advert expired: the peer is gone until it reappears. */
  | { type: 'peer-gone'; at: number; cause: string; peer: PeerKey }
  // Work stealing: thief side.
  | { type: 'steal-granted'; at: number; cause: string; from: PeerKey; requestId: number; batch: Batch }
  | { type: 'steal-failed'; at: number; cause: string; from: PeerKey; requestId: number; reason: string }
  // Work stealing: victim side. The command answering it comes back in the same handle() call.
  | {
      type: 'steal-requested'
      at: number
      cause: string
      from: PeerKey
      requestId: number
      free: Resources
      max: number
      /** What the thief accepts (absent: its advert says, else everything). */
      accepts?: Accepts
    }
  /** The victim could not write its grant: it still holds the batch. */
  | { type: 'grant-failed'; at: number; cause: string; to: PeerKey; requestId: number; batch: Batch }
  // Owner pushes.
  | { type: 'batch-pushed'; at: number; cause: string; from: PeerKey; batch: Batch }
  | { type: 'push-failed'; at: number; cause: string; to: PeerKey; batch: Batch; reason: string }
  // Execution.
  | { type: 'task-finished'; at: number; cause: string; task: TaskKey; outcome: TaskOutcome }
  /**
   * Runs that ended together (the executor answered them in one go): the same as one
   * task-finished each, in order, handled as one step, so the commands they cause come once
   * (one persist-results, one job-progress) instead of once per task.
   */
  | { type: 'tasks-finished'; at: number; cause: string; finished: FinishedRun[] }
  // Results: owner side receives, holder side gets acks.
  | {
      type: 'results-received'
      at: number
      cause: string
      from: PeerKey
      results: Array<TaskResult & { path?: CustodyPath }>
    }
  | { type: 'results-acked'; at: number; cause: string; from: PeerKey; tasks: TaskKey[] }
  | { type: 'results-send-failed'; at: number; cause: string; to: PeerKey; tasks: TaskKey[] }
  // Leases: owner receives a holder's heartbeat; holder receives the owner's answer.
  | {
      type: 'lease-received'
      at: number
      cause: string
      from: PeerKey
      holdings: Array<CopyKey & { path?: CustodyPath }>
    }
  | {
      type: 'lease-answered'
      at: number
      cause: string
      from: PeerKey
      /** Copies to stop holding: a drop for one copy never removes another (see CopyKey). */
      drop: CopyKey[]
      cancelledJobs: JobId[]
    }
  /** An owner told us it cancelled a job: drop its queued tasks, stop its running ones. */
  | { type: 'cancel-received'; at: number; cause: string; from: PeerKey; job: JobId }
  /** This node's trust or owner policy changed (policy.json edited, the user went busy or idle, hours). */
  | { type: 'policy-changed'; at: number; cause: string; policy: NodePolicy }
  /** A peer refused a batch this node pushed (its policy): nothing entered its custody. */
  | { type: 'push-refused'; at: number; cause: string; to: PeerKey; batch: Batch; reason: string }

// ---------------------------------------------------------------------------
// Commands out. Imperative: orders for the driver, carried out in order.

export type Command =
  | {
      type: 'send-steal'
      cause: string
      to: PeerKey
      requestId: number
      free: Resources
      max: number
      accepts: Accepts
    }
  | { type: 'reply-steal'; cause: string; to: PeerKey; requestId: number; batch: Batch }
  | { type: 'push-batch'; cause: string; to: PeerKey; batch: Batch }
  /** Answer to a batch-pushed this node's policy refuses: the push reply carries `reason`. */
  | { type: 'refuse-push'; cause: string; to: PeerKey; reason: string }
  /** Owner policy: stop (SIGSTOP) / continue (SIGCONT) these running tasks. */
  | { type: 'suspend-tasks'; cause: string; tasks: TaskKey[] }
  | { type: 'resume-tasks'; cause: string; tasks: TaskKey[] }
  | { type: 'run-task'; cause: string; job: JobSpec; task: TaskDescriptor; gpus: number[] }
  | { type: 'cancel-task'; cause: string; task: TaskKey }
  | { type: 'send-results'; cause: string; to: PeerKey; results: TaskResult[] }
  /** Owner: write these accepted outcomes to the store. Always precedes the matching ack. */
  | { type: 'persist-results'; cause: string; results: TaskResult[] }
  | { type: 'ack-results'; cause: string; to: PeerKey; tasks: TaskKey[] }
  | { type: 'send-lease'; cause: string; to: PeerKey; holdings: HeldKey[] }
  /** `drop` echoes each refused entry's copy, so the holder drops that copy only. */
  | { type: 'answer-lease'; cause: string; to: PeerKey; drop: CopyKey[]; cancelledJobs: JobId[] }
  | { type: 'send-cancel'; cause: string; to: PeerKey; job: JobId }
  | { type: 'publish-advert'; cause: string; advert: SchedulerAdvert }
  /** Owner: a job's counts changed (coalesced; at most one per job per handle()). */
  | { type: 'job-progress'; cause: string; progress: JobProgress }
  | { type: 'job-finished'; cause: string; job: JobId; status: JobStatus; progress: JobProgress }
  /** Owner: no known node can run this job's tasks; the job waits and says why. Empty reason = cleared. */
  | { type: 'job-blocked'; cause: string; job: JobId; reason: string }

export type CommandType = Command['type']

/** One run that ended: the attempt the executor was started with, and how it ended. */
export interface FinishedRun {
  task: TaskKey
  outcome: TaskOutcome
}
