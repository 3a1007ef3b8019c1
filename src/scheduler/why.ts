/**
 * "Why isn't my task running?": for one task of a job owned here, where it
 * stands (waiting for dependencies, queued here behind N tasks, held by a
 * peer, in doubt after a restart, final), its story, and for a task that is
 * not running, each member's reason it cannot take it right now (too small,
 * not enough GPUs, its trust policy, not lending now, busy) or that it could.
 * Pure: computed from the owner's table, the holder and the peers' adverts.
 */

import type { OwnedState } from './job-table.ts'
import { refusal } from './policy.ts'
import { fits, fitsNode, gpuCost, type NodeSize, slotCost } from './resources.ts'
import type { StoryEntry } from './story.ts'
import type { JobSpec, PeerKey, Resources, SchedulerAdvert } from './types.ts'

/** One member's answer to "could you run this task now?". */
export interface MemberReason {
  peer: PeerKey
  /** True when the member could start the task now (it steals, or is pushed, work it sees). */
  canTake: boolean
  /** resources | gpus | memory | policy | paused | busy | offline | never-seen | free */
  kind: string
  reason: string
}

export interface TaskWhy {
  job: string
  index: number
  /** live: the job runs; finished: only its story is left; unknown: no such job here (or forgotten). */
  known: 'live' | 'finished' | 'unknown'
  state?: OwnedState
  attempt?: number
  holder?: PeerKey
  /** When the current holder took custody. */
  heldSince?: number
  /** Dependencies not done yet (waiting). */
  waitingFor?: number[]
  /** Queued here: tasks ahead of it in its job's lane, and other tasks sharing the queue. */
  queued?: { ahead: number; others: number }
  /** Running on this node now. */
  runningHere?: boolean
  story: StoryEntry[]
  /** Moves not kept (the job's story log was full). */
  storyDropped: number
  /** For a task that is not running: each member's reason (this node first). */
  members: MemberReason[]
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`

/** Why the node advertising `a` cannot start a task of `job` now, or that it can. */
export function memberReason(peer: PeerKey, job: JobSpec, a: SchedulerAdvert): MemberReason {
  const r = job.resources
  const size: NodeSize = { slots: a.slots, memoryMB: a.memoryMB, gpus: a.gpus }
  const no = (kind: string, reason: string): MemberReason => ({ peer, canTake: false, kind, reason })
  if (!fitsNode(r, size)) return no(sizeKind(r, size), tooSmall(r, size))
  const refused = peer === job.owner ? undefined : refusal(a.accepts, job)
  if (refused !== undefined) return no('policy', `policy: ${refused}`)
  const free: Resources = { cpu: a.freeSlots, gpu: a.freeGpus, memoryMB: a.freeMemoryMB }
  if (!fits(r, free)) {
    if (a.freeSlots === 0 && a.running < a.slots && peer !== job.owner)
      return no('paused', `not lending now (owner policy: paused, outside its hours, or its CPU share used)`)
    if (slotCost(r) > a.freeSlots)
      return no('busy', `busy: ${plural(a.freeSlots, 'free slot')} of ${a.slots}, ${a.running} running`)
    if (gpuCost(r) > a.freeGpus)
      return no('busy', `busy: needs ${plural(gpuCost(r), 'free GPU')}, ${a.freeGpus} of ${a.gpus} free`)
    return no('busy', `busy: needs ${r.memoryMB} MB free, ${a.freeMemoryMB} MB free`)
  }
  const queued = a.ready.reduce((n, c) => n + c.count, 0)
  const note = queued > 0 ? `, ${queued} ready tasks queued there` : ''
  return { peer, canTake: true, kind: 'free', reason: `could take it now: ${a.freeSlots} free slots${note}` }
}

function sizeKind(r: Resources, n: NodeSize): string {
  if (gpuCost(r) > n.gpus) return 'gpus'
  if (r.memoryMB > n.memoryMB) return 'memory'
  return 'resources'
}

function tooSmall(r: Resources, n: NodeSize): string {
  if (gpuCost(r) > n.gpus)
    return `needs ${plural(gpuCost(r), 'GPU')}; it has ${n.gpus === 0 ? 'none' : n.gpus}`
  if (r.memoryMB > n.memoryMB) return `needs ${r.memoryMB} MB of memory; it has ${n.memoryMB} MB`
  return `needs ${plural(slotCost(r), 'CPU slot')}; it has ${n.slots}`
}
