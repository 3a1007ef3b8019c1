/**
 * gridnode's shared vocabulary: peers, jobs, tasks, their inputs, outcomes
 * and results, custody credentials, capacity and adverts. Plain data only:
 * nothing here knows about sockets, clocks or Node. The scheduler, the
 * protocol codecs, the executor, the daemon and the client all import it
 * (README, Design: who may import what).
 *
 * Peers are opaque string keys (the daemon uses peer ID strings). Times are
 * milliseconds on whatever clock the driver uses.
 */

export type PeerKey = string

/**
 * The most of a command task's stdout (its first bytes) and of its stderr (its last) a node keeps,
 * each: both must fit in one result value (8 MiB on the wire). A job asking for more is refused;
 * a node runs any it is handed under this cap anyway (a task's output is held in memory).
 */
export const MAX_COMMAND_OUTPUT_BYTES = 3 * 1024 * 1024

/** Secondary hand-offs one attempt may take; a holder whose copy has this many keeps it. */
export const MAX_CUSTODY_LINKS = 16

/** The highest copy number of one attempt (see CopyKey): the owner's hand-off and every link. */
export const MAX_COPY = MAX_CUSTODY_LINKS + 1

/**
 * Mean task time (ms) under which a slot holds one task more than it runs (the scheduler feeds the
 * executor two per slot, and a worker keeps two in flight), so a worker that finishes starts the
 * next at once instead of after the daemon's main thread has handled the result and the scheduler
 * has started another. That hand-off costs 0.3-1.4 ms on a 2-core machine (more when it is busy):
 * 1 ms lost per task is 2% of a 50 ms task, and on the 400 skewed sleeps (7-1,000 ms, mean 20)
 * it was 0.05 of the makespan ratio. A task waiting at a worker behind one that runs long goes to
 * another worker of the node as soon as one idles (worker-protocol.ts, REVOKE_AFTER_MS). Above it, a
 * second task waiting at a worker would be work no other node can take while the first runs.
 */
export const PIPELINE_TASK_MS = 50

export type JobId = string

/** What one task needs while it runs. Whole GPUs only. */
export interface Resources {
  cpu: number
  gpu: number
  memoryMB: number
}

/** What a job runs: a function from a content-addressed bundle, or a command. */
export type WorkSpec =
  /**
   * `call: 'map'` (default) calls `fn(input, ...depValues)`. `call: 'apply'` takes the input as an
   * argument array in which every `{ $gridnodeDep: k }` is replaced by `depValues[k]`, then calls `fn(...args)`.
   */
  | { kind: 'function'; bundle: string; exportName: string; call?: 'map' | 'apply' }
  /** `{}` in argv is replaced by the task's input (a string as is, anything else as JSON), as GNU parallel does. */
  | { kind: 'command'; argv: string[]; env: Record<string, string>; stdoutMaxBytes: number }
  /** No work at all: used by the simulator and by benchmarks of the scheduler alone. */
  | { kind: 'noop' }

/** A job as every holder of its tasks sees it. Travels with stolen batches. */
export interface JobSpec {
  id: JobId
  owner: PeerKey
  work: WorkSpec
  resources: Resources
  /** Per-task time limit; 0 = none. */
  timeoutMs: number
  /** Infrastructure failures (holder lost, worker crashed) a task may suffer before it fails as poison. */
  maxAttempts: number
  /** How many times a task that threw or timed out is run again (user errors). */
  retries: number
  /** Optional hint for simulators and cost-aware placement; ignored when 0. */
  priority?: number
  /** Files staged read-only into each task's working directory before it runs (content-addressed). */
  files?: FileEntry[]
  /** Files brought back from each task's working directory after it ends. */
  outputs?: OutputSpec
}

/**
 * One input file as a job's manifest lists it: a relative path (forward
 * slashes, no `..`), its size, the sha256 of its bytes, its mode bits, and
 * for files larger than one chunk the hash of its chunk list (a blob listing
 * the sha256 of each piece, so each piece is verified as it arrives).
 */
export interface FileEntry {
  path: string
  size: number
  sha256: string
  mode: number
  chunks?: string
}

/** Which files of a task's working directory come back, and how many bytes at most per task. */
export interface OutputSpec {
  globs: string[]
  /** Bytes of outputs one task may bring back (0: no limit). */
  maxBytes: number
  /** Each task's outputs land in a directory of their own: two tasks may write the same name. */
  perTask?: boolean
}

/** One output file of a task: its path relative to the working directory, size and sha256. */
export interface OutputFile {
  name: string
  size: number
  sha256: string
}

/** A task as submitted to its owner. */
export interface TaskInput {
  index: number
  /** Encoded input value (the scheduler never looks inside). */
  input: Uint8Array
  /** Indexes of tasks of the same job whose values this task receives, in order. */
  deps: number[]
  /** Optional expected cost (ms) for simulators; the scheduler treats it as a hint only. */
  costHintMs?: number
}

/** One secondary hand-off: the previous holder signed that it handed the attempt to `to`. */
export interface CustodyLink {
  to: PeerKey
  /** The handing node's signature (its libp2p key) over (owner, job, index, attempt, hop, to). */
  sig: Uint8Array
}

/**
 * Proof that this attempt of a task was handed to its holder: the owner
 * handed it to `first` (`tag`: the owner's MAC, checkable only by the owner),
 * then each link was signed by the holder before `to`. The path of holders is
 * [first, ...links.map(l => l.to)]. Made and checked by the I/O shell
 * (src/node/custody-credentials.ts); the scheduler only carries it along.
 */
export interface CustodyCredentials {
  first: PeerKey
  tag: Uint8Array
  links: CustodyLink[]
}

/** The unit that moves between nodes: one attempt of one task. */
export interface TaskDescriptor {
  job: JobId
  index: number
  /** Hand-off generation: bumped by the owner every time it re-queues the task. */
  attempt: number
  input: Uint8Array
  /** Encoded values of the task's dependencies, in `deps` order. */
  depValues: Uint8Array[]
  costHintMs?: number
  /** How this attempt reached its holder (absent on the owner's own copy). */
  custody?: CustodyCredentials
}

/** A batch of tasks, with the specs of every job they belong to. */
export interface Batch {
  jobs: JobSpec[]
  tasks: TaskDescriptor[]
}

export interface TaskKey {
  job: JobId
  index: number
  attempt: number
}

/** How one run of a task ended, as the executor reports it. */
export type TaskOutcome =
  | { status: 'ok'; value: Uint8Array; durationMs: number; outputs?: OutputFile[] }
  /** The task's own code threw, or a command exited non-zero: the user's error. */
  | { status: 'threw'; error: string; stack?: string; durationMs: number }
  | { status: 'timeout'; error: string; durationMs: number }
  /** The worker or process running it died (crash, memory limit): infrastructure. */
  | { status: 'crashed'; error: string; durationMs: number }
  /** The node could not even start it (missing bundle, bad module): the user's error, not retried. */
  | { status: 'rejected'; error: string; durationMs: number }
  /**
   * The holder gave the task back without (finishing) a run: its policy refuses it, or its owner
   * policy reclaimed the machine. Infrastructure: the owner re-queues it with a new attempt and
   * counts neither a retry nor a failure toward maxAttempts.
   */
  | { status: 'returned'; error: string; durationMs: number }

export interface TaskResult {
  job: JobId
  index: number
  attempt: number
  /** Who ran it. */
  ranOn: PeerKey
  outcome: TaskOutcome
  /** The credentials of the attempt the holder ran (so the owner can trace a holder it has not heard of). */
  custody?: CustodyCredentials
}

/**
 * A task key naming one copy of that attempt: `copy` is the copy's position
 * in the attempt's custody chain (1 = handed by the owner, n + 1 = handed on
 * by the holder of copy n; with credentials, their links + 1). One attempt
 * can reach the same holder twice (a hand-off and a steal-back: a → b → a
 * holds copies 1 and 3), so task + attempt alone cannot tell an answer about
 * the copy a holder had from the copy it has now. Absent only in hand-made
 * events (then it means any copy of that attempt); the wire always carries it.
 */
export type CopyKey = TaskKey & { copy?: number }

/** A lease holding: the copy its holder holds, with the credentials of that attempt when it has some. */
export type HeldKey = TaskKey & { copy: number; custody?: CustodyCredentials }

/**
 * A path of holders verified by the I/O shell from credentials: [first, ...]
 * ending at the sender. Undefined when none came or they did not verify.
 */
export type CustodyPath = PeerKey[]

export interface GpuInfo {
  index: number
  uuid?: string
  name: string
  memoryTotalMB?: number
  memoryFreeMB?: number
  utilizationPct?: number
}

/** Who may run one kind of work here: every member (`all`), or the listed owners only. */
export interface Access {
  all: boolean
  /** Owners allowed when `all` is false (at most MAX_ACCESS_PEERS on the wire). */
  peers: PeerKey[]
}

/**
 * What a node accepts from other nodes (its trust policy, as data). It rides
 * in the node's adverts (so owners and thieves know) and in steal requests
 * (so the victim grants only what the thief accepts). Its own tasks are
 * always accepted. Absent = accepts everything (older nodes).
 */
export interface Accepts {
  v: 1
  /** false: no task from another node at all (no sandbox, or the operator said so); `reason` says why. */
  foreign: boolean
  reason: string
  function: Access
  command: Access
  /** Tasks that need a GPU (on top of their kind). */
  gpu: Access
}

/**
 * The node's policy as the scheduler sees it, replaced whole by a
 * `policy-changed` event. The I/O shell derives it from policy.json, the
 * sandbox's availability and the owner policy (idle, hours, CPU share).
 */
export interface NodePolicy {
  accepts: Accepts
  /** CPU slots tasks from other nodes may occupy now (owner policy: share, hours, idle). */
  foreignSlots: number
  /** The machine's user is busy: running foreign tasks are suspended and none start. */
  suspended: boolean
  /** Suspended this long, foreign tasks held here are handed back to their owners. */
  handBackAfterMs: number
}

/** A node's fixed means, given to the scheduler at construction. */
export interface Capacity {
  slots: number
  memoryMB: number
  gpus: GpuInfo[]
}

/** Ready tasks of one resource class, as a node advertises them. */
export interface ReadyClass {
  resources: Resources
  count: number
}

/**
 * What a node tells the mesh about itself (the scheduler's part of the
 * capacity advert; the node adds identity, version, load and memory).
 */
export interface SchedulerAdvert {
  slots: number
  freeSlots: number
  memoryMB: number
  freeMemoryMB: number
  gpus: number
  freeGpus: number
  ready: ReadyClass[]
  running: number
  /** Mean run time of recently finished tasks here (ms), for prefetch sizing; 0 if unknown. */
  meanTaskMs: number
  /** What this node accepts from others; absent = everything. freeSlots is what it offers others now. */
  accepts?: Accepts
}

export type JobStatus = 'running' | 'done' | 'failed' | 'cancelled'

export interface JobProgress {
  job: JobId
  total: number
  done: number
  failed: number
  running: number
  /** Distinct nodes that returned a result for this job. */
  nodes: number
}
