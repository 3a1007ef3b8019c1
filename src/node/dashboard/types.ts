/**
 * What the dashboard's event stream carries (server → page). Plain data; the
 * page (dashboard/src) imports these types.
 */

export interface MemberRow {
  peer: string
  self: boolean
  /** online: adverts arrive; offline: a member we knew whose adverts stopped. */
  online: boolean
  slots: number
  /** Slots running tasks now. */
  busy: number
  /** Slots offered to other nodes now (owner policy may hold some back). */
  freeForOthers: number
  ready: number
  gpus: number
  gpusFree: number
  memoryTotalMB: number
  memoryFreeMB: number
  load1: number
  /** open | restricted | paused | closed (no foreign tasks), with words. */
  policy: string
  policyNote: string
  /** ms since its last advert (0 for this node); null: never heard. */
  advertAgeMs: number | null
  pingMs: number | null
  version: string
}

export interface FlowRow {
  from: string
  to: string
  kind: 'steal' | 'push'
  tasks: number
  agoMs: number
  /** The nodes that reported it: this node (its own steals and pushes) and members through their adverts. */
  seenBy: string[]
}

export interface JobRow {
  id: string
  name: string
  status: string
  total: number
  done: number
  failed: number
  running: number
  tasksPerSec: number
  /** Results per node, most first (at most 8; the rest summed under "others"). */
  nodes: Array<{ peer: string; tasks: number }>
  blocked: string
  createdAt: number
  finishedAt: number | null
  work: string
}

/** One run in the task stream as the page keeps it. Times are ms since the epoch. */
export interface TaskRunRow {
  j: string
  i: number
  n: string
  s: number
  e: number
  ok: 0 | 1
}

/**
 * A tick's runs in columns (thousands a second: objects naming their job and
 * node each time made a tick half a megabyte). Run k is the RUN_FIELDS numbers
 * from k * RUN_FIELDS in `runs`: job (an index into `jobs`), task index, node
 * (an index into `nodes`), start (ms before the tick's `now`), duration (ms),
 * ok (1 or 0).
 */
export interface RunColumns {
  jobs: string[]
  nodes: string[]
  runs: number[]
}

export const RUN_FIELDS = 6

export interface Hello {
  self: string
  mesh: string
  version: string
  now: number
}

export interface Tick {
  now: number
  members: MemberRow[]
  flows: FlowRow[]
  jobs: JobRow[]
  /** New runs since the last tick. */
  stream: RunColumns
  /** Runs left out of this tick (over the per-tick cap): the page shows them as a count. */
  skipped: number
}
