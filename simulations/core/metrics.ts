/**
 * What a run measures, kept in flat arrays indexed by global task id:
 * when each task became ready and when its result was accepted, how many
 * times it started and finished; slot time busy and available, integrated
 * exactly at every change and binned for the utilization plot; messages and
 * bytes by type; and, for small runs, every run for the Gantt chart.
 */

export const MSG = {
  stealRequest: 0,
  stealReply: 1,
  push: 2,
  results: 3,
  ack: 4,
  lease: 5,
  leaseAnswer: 6,
  cancel: 7,
  advert: 8,
  publish: 9,
  credit: 10,
  deliver: 11,
  brokerResult: 12,
  forward: 13,
} as const

export const MSG_NAMES = Object.keys(MSG) as Array<keyof typeof MSG>

export interface GanttRun {
  node: number
  lane: number
  start: number
  end: number
  job: number
  /** ok: its result was the one accepted; wasted: cancelled, crashed, or a duplicate. */
  ok: boolean
}

export class Metrics {
  readonly readyAt: Float64Array
  readonly doneAt: Float64Array
  readonly starts: Uint16Array
  readonly finishes: Uint16Array
  readonly accepted: Uint8Array
  readonly msgCount = new Float64Array(MSG_NAMES.length)
  readonly msgBytes = new Float64Array(MSG_NAMES.length)
  readonly binMs: number
  busyBins: number[] = []
  aliveBins: number[] = []
  busySlots = 0
  aliveSlots = 0
  busySlotMs = 0
  aliveSlotMs = 0
  /** Slot time of runs that were cancelled, cut short by a crash, or duplicated. */
  wastedSlotMs = 0
  duplicateResults = 0
  private lastAt: number
  private bin = 0
  private binEnd: number
  /** Integration stops here (the last job's finish). */
  stopAt = Number.POSITIVE_INFINITY
  readonly t0: number
  readonly gantt: GanttRun[] | undefined

  constructor(tasks: number, t0: number, binMs: number, gantt: boolean) {
    this.readyAt = new Float64Array(tasks).fill(Number.NaN)
    this.doneAt = new Float64Array(tasks).fill(Number.NaN)
    this.starts = new Uint16Array(tasks)
    this.finishes = new Uint16Array(tasks)
    this.accepted = new Uint8Array(tasks)
    this.lastAt = t0
    this.binEnd = t0 + binMs
    this.t0 = t0
    this.binMs = binMs
    this.gantt = gantt ? [] : undefined
  }

  message(type: number, bytes: number): void {
    this.msgCount[type]++
    this.msgBytes[type] += bytes
  }

  /** Integrates busy and alive slot time up to `at` (bins advance one by one, no rounding loops). */
  advance(at: number): void {
    const now = Math.min(at, this.stopAt)
    if (now <= this.lastAt) return
    let t = this.lastAt
    while (now > this.binEnd) {
      this.add(this.binEnd - t)
      t = this.binEnd
      this.bin++
      this.binEnd = this.t0 + (this.bin + 1) * this.binMs
    }
    this.add(now - t)
    this.lastAt = now
  }

  private add(dt: number): void {
    if (dt <= 0) return
    while (this.busyBins.length <= this.bin) {
      this.busyBins.push(0)
      this.aliveBins.push(0)
    }
    this.busyBins[this.bin] += this.busySlots * dt
    this.aliveBins[this.bin] += this.aliveSlots * dt
    this.busySlotMs += this.busySlots * dt
    this.aliveSlotMs += this.aliveSlots * dt
  }

  slotsBusy(now: number, delta: number): void {
    this.advance(now)
    this.busySlots += delta
  }

  slotsAlive(now: number, delta: number): void {
    this.advance(now)
    this.aliveSlots += delta
  }
}
