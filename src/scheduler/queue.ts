/**
 * The local ready queue: partitioned by resource class, and within a class
 * one FIFO lane per job, served round-robin so one large job does not starve
 * another (and, jobs having owners, neither does one owner). Classes are
 * served round-robin too. Removal of an arbitrary item is O(1) (its slot is
 * marked dead and skipped later).
 */
import { classKey } from './resources.ts'
import type { JobId, ReadyClass, Resources } from './types.ts'

export interface Queueable {
  readonly jobId: JobId
  readonly res: Resources
  /** Owned by this node (push takes only these). */
  readonly own: boolean
  slot: Slot | undefined
}

/** A per-job filter for pop/countFitting: may this job's tasks (of class `res`) go? */
export type LaneFilter = (jobId: JobId, own: boolean, res: Resources) => boolean

export interface Slot {
  live: boolean
  readonly item: Queueable
  readonly lane: Lane
}

interface Lane {
  readonly jobId: JobId
  readonly own: boolean
  readonly cls: ClassQueue
  items: (Slot | undefined)[]
  head: number
  live: number
}

interface ClassQueue {
  readonly key: string
  readonly resources: Resources
  readonly lanes: Map<JobId, Lane>
  order: Lane[]
  cursor: number
  count: number
}

export class FairQueue<T extends Queueable> {
  private readonly classes = new Map<string, ClassQueue>()
  private order: ClassQueue[] = []
  private cursor = 0
  size = 0
  ownSize = 0

  push(item: T): void {
    const cls = this.classFor(item.res)
    let lane = cls.lanes.get(item.jobId)
    if (lane === undefined) {
      lane = { jobId: item.jobId, own: item.own, cls, items: [], head: 0, live: 0 }
      cls.lanes.set(item.jobId, lane)
      cls.order.push(lane)
    }
    const slot: Slot = { live: true, item, lane }
    lane.items.push(slot)
    lane.live++
    cls.count++
    this.size++
    if (item.own) this.ownSize++
    item.slot = slot
  }

  /** Takes an item out wherever it is. */
  remove(item: T): void {
    const slot = item.slot
    if (slot === undefined || !slot.live) return
    this.kill(slot)
  }

  /**
   * Takes the next item whose class passes `fits` (and whose job passes
   * `ownOnly` and `laneOk`), rotating across classes and, within a class, across jobs.
   */
  pop(fits: (r: Resources) => boolean, ownOnly = false, laneOk?: LaneFilter): T | undefined {
    for (let seen = 0; seen < this.order.length; ) {
      if (this.cursor >= this.order.length) this.cursor = 0
      const cls = this.order[this.cursor]
      if (cls.count === 0) {
        this.order.splice(this.cursor, 1)
        continue
      }
      seen++
      if ((ownOnly && !this.hasOwn(cls)) || !fits(cls.resources)) {
        this.cursor++
        continue
      }
      const slot = this.popFromClass(cls, ownOnly, laneOk)
      this.cursor++
      if (slot !== undefined) return slot.item as T
    }
    return undefined
  }

  /** How many queued items have a class passing `fits` (and a job passing `laneOk`). */
  countFitting(fits: (r: Resources) => boolean, laneOk?: LaneFilter): number {
    let n = 0
    for (const cls of this.classes.values()) {
      if (cls.count === 0 || !fits(cls.resources)) continue
      if (laneOk === undefined) {
        n += cls.count
        continue
      }
      for (const lane of cls.lanes.values()) if (laneOk(lane.jobId, lane.own, cls.resources)) n += lane.live
    }
    return n
  }

  /**
   * Where a queued item stands: live items ahead of it in its job's lane, and the items of other
   * lanes (other jobs and classes, served in turn with it). O(lane length): for questions only.
   */
  position(item: T): { ahead: number; others: number } | undefined {
    const slot = item.slot
    if (slot === undefined || !slot.live) return undefined
    const lane = slot.lane
    let ahead = 0
    for (let i = lane.head; i < lane.items.length; i++) {
      const s = lane.items[i]
      if (s === slot) break
      if (s?.live) ahead++
    }
    return { ahead, others: this.size - lane.live }
  }

  readyClasses(ownOnly = false): ReadyClass[] {
    const out: ReadyClass[] = []
    for (const cls of this.classes.values()) {
      const count = ownOnly ? ownCount(cls) : cls.count
      if (count > 0) out.push({ resources: { ...cls.resources }, count })
    }
    return out
  }

  /**
   * Whether readyClasses(ownOnly) would still say what `ready` said, for a peer deciding where to
   * steal: the same classes in the same order, none with more ready tasks (a thief acts on more
   * at once) and none with half or fewer (victims are weighted by their counts). Without
   * building it.
   */
  readyAsAdvertised(ready: readonly ReadyClass[], ownOnly = false): boolean {
    let i = 0
    for (const cls of this.classes.values()) {
      const count = ownOnly ? ownCount(cls) : cls.count
      if (count === 0) continue
      const r = ready[i++]
      if (
        r === undefined ||
        count > r.count ||
        count * 2 <= r.count ||
        r.resources.cpu !== cls.resources.cpu ||
        r.resources.gpu !== cls.resources.gpu ||
        r.resources.memoryMB !== cls.resources.memoryMB
      )
        return false
    }
    return i === ready.length
  }

  /** Every queued item (for invariant checks; O(n)). */
  *items(): Generator<T> {
    for (const cls of this.classes.values()) {
      for (const lane of cls.lanes.values()) {
        for (let i = lane.head; i < lane.items.length; i++) {
          const s = lane.items[i]
          if (s?.live) yield s.item as T
        }
      }
    }
  }

  private hasOwn(cls: ClassQueue): boolean {
    for (const lane of cls.lanes.values()) if (lane.own) return true
    return false
  }

  private classFor(r: Resources): ClassQueue {
    const key = classKey(r)
    let cls = this.classes.get(key)
    if (cls === undefined) {
      cls = {
        key,
        resources: { cpu: r.cpu, gpu: r.gpu, memoryMB: r.memoryMB },
        lanes: new Map(),
        order: [],
        cursor: 0,
        count: 0,
      }
      this.classes.set(key, cls)
      this.order.push(cls)
    }
    return cls
  }

  private popFromClass(cls: ClassQueue, ownOnly: boolean, laneOk?: LaneFilter): Slot | undefined {
    for (let seen = 0; seen < cls.order.length; ) {
      if (cls.cursor >= cls.order.length) cls.cursor = 0
      const lane = cls.order[cls.cursor]
      if (lane.live === 0) {
        cls.order.splice(cls.cursor, 1)
        continue
      }
      seen++
      if ((ownOnly && !lane.own) || (laneOk !== undefined && !laneOk(lane.jobId, lane.own, cls.resources))) {
        cls.cursor++
        continue
      }
      cls.cursor++
      return this.shiftLive(lane)
    }
    return undefined
  }

  private shiftLive(lane: Lane): Slot | undefined {
    while (lane.head < lane.items.length) {
      const slot = lane.items[lane.head]
      lane.items[lane.head] = undefined
      lane.head++
      if (slot?.live) {
        this.kill(slot)
        return slot
      }
    }
    return undefined
  }

  private kill(slot: Slot): void {
    slot.live = false
    slot.item.slot = undefined
    const lane = slot.lane
    lane.live--
    lane.cls.count--
    this.size--
    if (slot.item.own) this.ownSize--
    if (lane.live === 0) {
      lane.items = []
      lane.head = 0
      lane.cls.lanes.delete(lane.jobId)
      if (lane.cls.count === 0) this.classes.delete(lane.cls.key)
    } else if (lane.head > 64 && lane.head * 2 > lane.items.length) {
      lane.items = lane.items.slice(lane.head)
      lane.head = 0
    }
  }
}

/** Queued items of a class that belong to this node's own jobs. */
function ownCount(cls: ClassQueue): number {
  let n = 0
  for (const lane of cls.lanes.values()) if (lane.own) n += lane.live
  return n
}
