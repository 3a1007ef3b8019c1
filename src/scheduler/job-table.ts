/**
 * The owner's task table for one job: task records, dependency wiring and
 * the checks made once at submit (missing dependencies, cycles).
 */
import { JobStory } from './story.ts'
import type { JobId, JobProgress, JobSpec, PeerKey, TaskDescriptor, TaskInput } from './types.ts'

/**
 * waiting: dependencies not done. local: held by this node (queued or
 * running here). remote: held by `holder`. doubt: restored, holder unknown
 * until a lease claims it. done / failed: final.
 */
export type OwnedState = 'waiting' | 'local' | 'remote' | 'doubt' | 'done' | 'failed'

export const OWNED_STATES: readonly OwnedState[] = ['waiting', 'local', 'remote', 'doubt', 'done', 'failed']

export interface OwnedTask {
  readonly job: OwnedJob
  readonly index: number
  readonly deps: readonly number[]
  readonly costHintMs: number | undefined
  state: OwnedState
  attempt: number
  holder: PeerKey | undefined
  /** Remote: the length of the custody path of `holder` as the owner knows it (1 = handed by the owner). */
  hop: number
  /**
   * The latest (attempt, holder) pairs that legitimately held this task,
   * oldest first, at most HELD_MEMORY: a late result of an abandoned attempt
   * from its real holder still counts. Undefined until first handed off.
   */
  held: Array<{ attempt: number; holder: PeerKey }> | undefined
  /** Lease deadline (remote) or grace deadline (doubt). */
  deadline: number
  /** When the current holder took custody. */
  heldSince: number
  /** Until the task becomes ready. */
  input: Uint8Array | undefined
  /** From ready until final. */
  desc: TaskDescriptor | undefined
  /** Dependencies not yet done. */
  depsLeft: number
  /** Tasks whose deps name this one (one entry per mention). */
  readonly dependents: OwnedTask[]
  /** Mentions by dependents still waiting: the value is kept while > 0. */
  dependentsLeft: number
  leftWaiting: boolean
  value: Uint8Array | undefined
  userErrors: number
  failures: number
  lastError: string
  lastCrashed: boolean
  backedUp: boolean
  /** Nodes on which a run of this task failed (threw, timed out, crashed, lost): retries go elsewhere first. */
  failedOn: PeerKey[] | undefined
}

export interface OwnedJob {
  readonly spec: JobSpec
  readonly tasks: Map<number, OwnedTask>
  /** Attempts handed out are at least this (above those of a previous life, after a restore). */
  attemptBase: number
  readonly counts: Record<OwnedState, number>
  /** False once finished or cancelled. */
  active: boolean
  blocked: string
  /** Results accepted, and the sum of their run times (for the mean). */
  results: number
  durationSum: number
  readonly nodes: Set<PeerKey>
  /** Tasks held by remote holders, oldest custody first. */
  readonly remoteHeld: Map<number, OwnedTask>
  /** Every custody move of every task (story.ts). */
  readonly story: JobStory
  /** Runs of this job's tasks per node that ran some: ok and failed (a node failing many stops taking them). */
  readonly record: Map<PeerKey, { ok: number; failed: number }>
  /** Backup copies of stragglers started (tail.ts). */
  backups: number
}

/** Past (attempt, holder) pairs remembered per task. */
export const HELD_MEMORY = 8

/** True if `holder` legitimately held `attempt` of the task (now or recently). */
export function heldBefore(t: OwnedTask, attempt: number, holder: PeerKey): boolean {
  if (t.held === undefined) return false
  for (const h of t.held) if (h.attempt === attempt && h.holder === holder) return true
  return false
}

export function buildJob(spec: JobSpec, inputs: TaskInput[]): OwnedJob {
  const job: OwnedJob = {
    spec,
    tasks: new Map(),
    attemptBase: 0,
    counts: { waiting: 0, local: 0, remote: 0, doubt: 0, done: 0, failed: 0 },
    active: true,
    blocked: '',
    results: 0,
    durationSum: 0,
    nodes: new Set(),
    remoteHeld: new Map(),
    story: new JobStory(),
    record: new Map(),
    backups: 0,
  }
  for (const inp of inputs) {
    if (job.tasks.has(inp.index)) continue
    job.tasks.set(inp.index, {
      job,
      index: inp.index,
      deps: inp.deps,
      costHintMs: inp.costHintMs,
      state: 'waiting',
      attempt: 0,
      holder: undefined,
      hop: 0,
      held: undefined,
      deadline: 0,
      heldSince: 0,
      input: inp.input,
      desc: undefined,
      depsLeft: inp.deps.length,
      dependents: [],
      dependentsLeft: 0,
      leftWaiting: false,
      value: undefined,
      userErrors: 0,
      failures: 0,
      lastError: '',
      lastCrashed: false,
      backedUp: false,
      failedOn: undefined,
    })
    job.counts.waiting++
  }
  for (const t of job.tasks.values()) {
    for (const d of t.deps) {
      const dep = job.tasks.get(d)
      if (dep === undefined) continue
      dep.dependents.push(t)
      dep.dependentsLeft++
    }
  }
  return job
}

/** Tasks that can never run: a dependency that does not exist, or a cycle. */
export function invalidTasks(job: OwnedJob): Map<OwnedTask, string> {
  const bad = new Map<OwnedTask, string>()
  let anyDeps = false
  for (const t of job.tasks.values()) if (t.deps.length > 0) anyDeps = true
  if (!anyDeps) return bad
  const indegree = new Map<OwnedTask, number>()
  const stack: OwnedTask[] = []
  for (const t of job.tasks.values()) {
    const missing = t.deps.find((d) => !job.tasks.has(d))
    if (missing !== undefined) bad.set(t, `dependency ${missing} does not exist`)
    const n = t.deps.filter((d) => job.tasks.has(d)).length
    indegree.set(t, n)
    if (n === 0) stack.push(t)
  }
  // Kahn's algorithm: whatever is never released sits on or behind a cycle.
  for (let t = stack.pop(); t !== undefined; t = stack.pop()) {
    for (const d of t.dependents) {
      const n = (indegree.get(d) ?? 0) - 1
      indegree.set(d, n)
      if (n === 0) stack.push(d)
    }
  }
  for (const [t, n] of indegree) {
    if (n > 0 && !bad.has(t)) bad.set(t, 'dependency cycle')
  }
  return bad
}

export function descriptor(t: OwnedTask, depValues: Uint8Array[]): TaskDescriptor {
  const d: TaskDescriptor = {
    job: t.job.spec.id,
    index: t.index,
    attempt: t.attempt,
    input: t.input ?? new Uint8Array(0),
    depValues,
  }
  if (t.costHintMs !== undefined) d.costHintMs = t.costHintMs
  return d
}

/** A job's counts as its owner reports them: JobProgress and the backup copies started. */
export interface OwnerProgress extends JobProgress {
  /** Present once the job started any. */
  backups?: number
}

/**
 * `remoteRunning`: at most how many of the job's remote tasks can be running
 * (what other nodes advertise as running): a holder's prefetched tasks wait in
 * its queue and are not counted as running.
 */
export function progressOf(
  job: OwnedJob,
  runningHere: number,
  remoteRunning = Number.POSITIVE_INFINITY,
): OwnerProgress {
  return {
    job: job.spec.id,
    total: job.tasks.size,
    done: job.counts.done,
    failed: job.counts.failed,
    running: Math.min(job.counts.remote, remoteRunning) + runningHere,
    nodes: job.nodes.size,
    ...(job.backups > 0 ? { backups: job.backups } : {}),
  }
}

export function meanTaskMs(job: OwnedJob): number | undefined {
  return job.results > 0 ? job.durationSum / job.results : undefined
}

export type { JobId }
