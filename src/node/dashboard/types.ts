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

export interface TaskRunRow {
  /** job, index, node, start, end (ms since the epoch), ok as 1/0: arrays keep the stream small. */
  j: string
  i: number
  n: string
  s: number
  e: number
  ok: 0 | 1
}

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
  runs: TaskRunRow[]
  /** Runs left out of this tick (over the per-tick cap): the page shows them as a count. */
  skipped: number
}
