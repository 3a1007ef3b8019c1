/**
 * Resource arithmetic: slot cost, class keys, fit tests, and the pool of this
 * node's CPU slots, memory and whole GPUs (assigned by index).
 */
import { invariant } from './errors.ts'
import type { Capacity, Resources } from './types.ts'

/**
 * For tasks with gpu == 0, up to slots × depth may be started when tasks are tiny, depth being
 * enough to keep TINY_TASK_MS of work per slot with the executor, at most MAX_DEPTH: tiny tasks then
 * reach the worker threads in batches instead of one message each.
 */
export const MAX_DEPTH = 64
/** Mean task time (ms) under which the executor is fed several tasks per slot. */
export const TINY_TASK_MS = 2
/** Mean task time (ms) under which a slot holds two tasks (src/domain/types.ts says why). */
export { PIPELINE_TASK_MS } from '../domain/types.ts'
/**
 * Mean task time (ms) under which a slot holds two tasks whatever the peers do: the hand-off
 * (0.3-1.4 ms) is a large share of such a task. From here to PIPELINE_TASK_MS, only while no
 * peer is idle (Holder.depth).
 */
export const PIPELINE_ALWAYS_MS = 6

/** Default of Settings.handOnMinMs: tasks shorter on average than this are not handed on from a thief to another. */
export const HAND_ON_MIN_MS = 1

/** CPU slots a task occupies: at least one, whole slots. */
export function slotCost(r: Resources): number {
  return r.cpu > 1 ? Math.ceil(r.cpu) : 1
}

export function gpuCost(r: Resources): number {
  return r.gpu > 0 ? Math.ceil(r.gpu) : 0
}

/** Tasks with equal keys are interchangeable for placement. */
export function classKey(r: Resources): string {
  return `${r.cpu}/${r.gpu}/${r.memoryMB}`
}

/** Does one task needing `r` fit in `free` (cpu = free slots)? */
export function fits(r: Resources, free: Resources): boolean {
  return slotCost(r) <= free.cpu && gpuCost(r) <= free.gpu && r.memoryMB <= free.memoryMB
}

/** A node's total means, as far as placement cares. */
export interface NodeSize {
  slots: number
  memoryMB: number
  gpus: number
}

/** Could a node of this size ever run one task needing `r`? */
export function fitsNode(r: Resources, n: NodeSize): boolean {
  return slotCost(r) <= n.slots && gpuCost(r) <= n.gpus && r.memoryMB <= n.memoryMB
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** Why no node of `nodes` can run `r`, or '' if one can. */
export function blockReason(r: Resources, nodes: NodeSize[]): string {
  if (nodes.some((n) => fitsNode(r, n))) return ''
  const known = `(${plural(nodes.length, 'node')} known)`
  const maxGpus = Math.max(0, ...nodes.map((n) => n.gpus))
  const maxMem = Math.max(0, ...nodes.map((n) => n.memoryMB))
  const maxSlots = Math.max(0, ...nodes.map((n) => n.slots))
  const g = gpuCost(r)
  if (g > maxGpus) {
    const what = maxGpus === 0 ? 'advertises a GPU' : `has ${plural(g, 'GPU')} (at most ${maxGpus})`
    return `needs ${plural(g, 'GPU')}; no node in the mesh ${what} ${known}`
  }
  if (r.memoryMB > maxMem) {
    return `needs ${r.memoryMB} MB of memory; the largest node has ${maxMem} MB ${known}`
  }
  if (slotCost(r) > maxSlots) {
    return `needs ${plural(slotCost(r), 'CPU slot')}; the largest node has ${maxSlots} ${known}`
  }
  return `needs ${slotCost(r)} CPU, ${g} GPU, ${r.memoryMB} MB together; no single node has all of them ${known}`
}

/** This node's means and what running tasks use of them. */
export class ResourcePool {
  readonly slots: number
  readonly memoryMB: number
  readonly gpuIndexes: readonly number[]
  usedSlots = 0
  usedMemoryMB = 0
  private readonly busy = new Set<number>()

  constructor(capacity: Capacity) {
    this.slots = Math.max(0, Math.floor(capacity.slots))
    this.memoryMB = Math.max(0, capacity.memoryMB)
    this.gpuIndexes = capacity.gpus.map((g) => g.index)
  }

  get size(): NodeSize {
    return { slots: this.slots, memoryMB: this.memoryMB, gpus: this.gpuIndexes.length }
  }

  get freeGpus(): number {
    return this.gpuIndexes.length - this.busy.size
  }

  get freeSlots(): number {
    return Math.max(0, this.slots - this.usedSlots)
  }

  /** Free means now, in the shape a thief sends (cpu = free slots). */
  free(): Resources {
    return { cpu: this.freeSlots, gpu: this.freeGpus, memoryMB: this.memoryMB - this.usedMemoryMB }
  }

  /** May a task needing `r` start now? `depth` > 1 oversubscribes CPU slots for GPU-less tasks. */
  canStart(r: Resources, depth: number): boolean {
    const g = gpuCost(r)
    const slotLimit = g === 0 ? this.slots * depth : this.slots
    return (
      this.usedSlots + slotCost(r) <= slotLimit &&
      this.usedMemoryMB + r.memoryMB <= this.memoryMB &&
      g <= this.freeGpus
    )
  }

  /** Takes the means of one task; returns the GPU indexes assigned to it. */
  acquire(r: Resources): number[] {
    this.usedSlots += slotCost(r)
    this.usedMemoryMB += r.memoryMB
    const want = gpuCost(r)
    const gpus: number[] = []
    for (const index of this.gpuIndexes) {
      if (gpus.length === want) break
      if (!this.busy.has(index)) {
        this.busy.add(index)
        gpus.push(index)
      }
    }
    return gpus
  }

  release(r: Resources, gpus: readonly number[]): void {
    this.usedSlots -= slotCost(r)
    this.usedMemoryMB -= r.memoryMB
    for (const index of gpus) this.busy.delete(index)
  }

  /** Checks the counters against what the running tasks hold. */
  check(running: Iterable<{ res: Resources; gpus: readonly number[] }>): void {
    let slots = 0
    let mem = 0
    const seen = new Set<number>()
    for (const t of running) {
      slots += slotCost(t.res)
      mem += t.res.memoryMB
      invariant(t.gpus.length === gpuCost(t.res), 'a running task holds the wrong number of GPUs')
      for (const g of t.gpus) {
        invariant(!seen.has(g), `GPU ${g} assigned twice`)
        invariant(this.busy.has(g), `GPU ${g} in use but not marked busy`)
        seen.add(g)
      }
    }
    invariant(seen.size === this.busy.size, 'busy GPU set does not match running tasks')
    invariant(slots === this.usedSlots, `used slots ${this.usedSlots} != ${slots} held by running tasks`)
    invariant(mem === this.usedMemoryMB, `used memory ${this.usedMemoryMB} != ${mem}`)
    invariant(this.usedSlots >= 0 && this.usedSlots <= this.slots * MAX_DEPTH, 'slot accounting out of range')
    invariant(this.usedMemoryMB >= 0 && this.usedMemoryMB <= this.memoryMB, 'memory accounting out of range')
  }
}
