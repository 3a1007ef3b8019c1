/**
 * What every part of one NodeScheduler shares while it handles an event:
 * the current time and cause, the commands produced so far, settings,
 * counters and the seeded PRNG.
 */
import type { Random } from './random.ts'
import { HAND_ON_MIN_MS, PIPELINE_TASK_MS } from './resources.ts'
import type { Capacity, Command, PeerKey, TaskResult } from './types.ts'

export interface SchedulerOptions {
  self: PeerKey
  capacity: Capacity
  /** Seeds the PRNG (victim choice, backoff jitter). */
  seed: number
  /** Holder → owner heartbeat period. Default 1000. */
  leaseIntervalMs?: number
  /** The owner re-queues a held task not named by a lease for this long. Default 5000. */
  leaseTimeoutMs?: number
  /** Restored (in-doubt) tasks wait this long for a holder's lease. Default leaseTimeoutMs. */
  restoreGraceMs?: number
  /** Heartbeat publish-advert period. Default 1000. */
  advertIntervalMs?: number
  /** Change-driven adverts at most this often. Default 100. */
  advertMinIntervalMs?: number
  /** First steal backoff; doubles per failed/empty steal up to stealBackoffMaxMs. Default 20. */
  stealBackoffMinMs?: number
  /** Default 1000. */
  stealBackoffMaxMs?: number
  /**
   * Tasks a thief asks for (and an owner pushes) per free slot when tasks are long (short ones
   * are sized by targetBufferMs). Default 2, chosen on the simulator's figures against 1
   * (simulations/README.md, "The prefetch default"): 2 is ahead on the heterogeneous
   * three-region mesh, level on skewed sleeps. Both run in the property tests.
   */
  prefetchFactor?: number
  /**
   * Mean task time (ms) under which the executor is fed two tasks per slot, so a worker starts
   * its next task without waiting for the daemon. Default PIPELINE_TASK_MS (50).
   */
  pipelineTaskMs?: number
  /** Queued work (by mean task time) a thief wants per slot. Default 20. */
  targetBufferMs?: number
  /** Tasks per steal or push. Default 1024. */
  maxBatch?: number
  /**
   * Another owner's tasks are handed on (granted to a thief) only while this node's mean task
   * time is at least this (ms), or unknown. A hand-on costs more than a tiny task's run: a signed
   * custody link, its check at the owner, a lease entry (4 daemons x 1 slot of no-ops on 2 cores:
   * 17% of the owner's CPU in those checks; without thief-to-thief steals, +17% tasks/s). Such
   * tasks run where their owner sent them, and adverts count only what would be granted.
   * Default HAND_ON_MIN_MS (1).
   */
  handOnMinMs?: number
  /**
   * Bytes of one other owner's task inputs (queued or running) and results not yet acked that a
   * node holds at most: a push past it is refused whole, with the reason, and the owner keeps
   * the tasks. Default 256 MiB.
   */
  maxHeldBytesPerOwner?: number
  /** ...and of all other owners together. Default 1 GiB. */
  maxHeldBytes?: number
  /** A holder resends unacked results after this. Default 2000. */
  resultResendMs?: number
  /** Tail backups: a task held elsewhere longer than this × the job's mean task time. Default 3. */
  backupAfterFactor?: number
  /**
   * ...and at least this long (ms). Backups are for slow or stuck nodes, not for tasks that sit
   * in a prefetch queue for a moment: without a floor, a job of tiny tasks backs up its whole tail.
   * Default 1000.
   */
  backupMinMs?: number
}

export type Settings = Required<Omit<SchedulerOptions, 'self' | 'capacity' | 'seed'>>

export function resolveSettings(o: SchedulerOptions): Settings {
  const leaseTimeoutMs = o.leaseTimeoutMs ?? 5000
  return {
    leaseIntervalMs: o.leaseIntervalMs ?? 1000,
    leaseTimeoutMs,
    restoreGraceMs: o.restoreGraceMs ?? leaseTimeoutMs,
    advertIntervalMs: o.advertIntervalMs ?? 1000,
    advertMinIntervalMs: o.advertMinIntervalMs ?? 100,
    stealBackoffMinMs: o.stealBackoffMinMs ?? 20,
    stealBackoffMaxMs: o.stealBackoffMaxMs ?? 1000,
    prefetchFactor: o.prefetchFactor ?? 2,
    pipelineTaskMs: o.pipelineTaskMs ?? PIPELINE_TASK_MS,
    targetBufferMs: o.targetBufferMs ?? 20,
    maxBatch: Math.max(1, o.maxBatch ?? 1024),
    handOnMinMs: o.handOnMinMs ?? HAND_ON_MIN_MS,
    maxHeldBytesPerOwner: o.maxHeldBytesPerOwner ?? 256 * 1024 * 1024,
    maxHeldBytes: o.maxHeldBytes ?? 1024 * 1024 * 1024,
    resultResendMs: o.resultResendMs ?? 2000,
    backupAfterFactor: o.backupAfterFactor ?? 3,
    backupMinMs: o.backupMinMs ?? 1000,
  }
}

export interface SchedulerStats {
  stealsSent: number
  /** Steal replies that brought tasks. */
  stealsGranted: number
  /** Steal replies that were empty, or steals that failed. */
  stealsEmpty: number
  tasksStolen: number
  tasksGiven: number
  pushes: number
  tasksRun: number
  duplicateResults: number
  requeued: number
  backups: number
  /** Leases claiming a task whose custody the sender could not trace to the owner (dropped). */
  refusedClaims: number
  /** Results from a node that never held that attempt (dropped, not acked). */
  refusedResults: number
  /** Pushed batches naming a job the sender does not own (dropped whole). */
  refusedPushes: number
  /** Tasks refused because their job id is already used here by another owner (a member lying, or a collision). */
  jobIdCollisions: number
  /** Pushed batches and stolen tasks this node's trust or owner policy refused. */
  policyRefused: number
  /** Tasks this node handed back to their owners unrun (policy, owner policy). */
  returned: number
  /** Owner: tasks a holder handed back, re-queued without counting an attempt. */
  handedBack: number
}

export function emptyStats(): SchedulerStats {
  return {
    stealsSent: 0,
    stealsGranted: 0,
    stealsEmpty: 0,
    tasksStolen: 0,
    tasksGiven: 0,
    pushes: 0,
    tasksRun: 0,
    duplicateResults: 0,
    requeued: 0,
    backups: 0,
    refusedClaims: 0,
    refusedResults: 0,
    refusedPushes: 0,
    jobIdCollisions: 0,
    policyRefused: 0,
    returned: 0,
    handedBack: 0,
  }
}

export class Runtime {
  now = Number.NEGATIVE_INFINITY
  cause = ''
  out: Command[] = []
  private persistBuf: TaskResult[] = []
  readonly self: PeerKey
  readonly s: Settings
  readonly stats: SchedulerStats = emptyStats()
  readonly rng: Random

  constructor(self: PeerKey, s: Settings, rng: Random) {
    this.self = self
    this.s = s
    this.rng = rng
  }

  begin(at: number, cause: string): void {
    if (at > this.now) this.now = at
    this.cause = cause
    this.out = []
  }

  emit(c: Command): void {
    this.out.push(c)
  }

  /** Queue an accepted outcome for the store; flushPersist() emits one persist-results. */
  persist(r: TaskResult): void {
    this.persistBuf.push(r)
  }

  flushPersist(): void {
    if (this.persistBuf.length === 0) return
    this.out.push({ type: 'persist-results', cause: this.cause, results: this.persistBuf })
    this.persistBuf = []
  }
}
