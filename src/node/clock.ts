/**
 * The driver's clock, passed in (DriverOptions.clock) so a test can drive
 * time by hand: wall-clock milliseconds for events and records, a monotonic
 * reading for durations, and the timers the driver arms (the scheduler's
 * next deadline, housekeeping). The daemon uses `systemClock`.
 */

/** A timer the clock armed; `unref` keeps a repeating one from holding the process open. */
export interface ClockTimer {
  unref?(): unknown
}

export interface Clock {
  /** Wall-clock time in ms since the epoch (event times, job records). */
  now(): number
  /** A monotonic reading in ms (durations only). */
  monotonic(): number
  setTimeout(fn: () => void, ms: number): ClockTimer
  setInterval(fn: () => void, ms: number): ClockTimer
  /** Cancels a timer of either kind; undefined is ignored. */
  clear(timer: ClockTimer | undefined): void
}

export const systemClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  setInterval: (fn, ms) => setInterval(fn, ms),
  clear: (timer) => {
    if (timer !== undefined) clearTimeout(timer as NodeJS.Timeout)
  },
}

/** A clock that moves only when told (tests): timers fire in due order as `advance` passes them. */
export class ManualClock implements Clock {
  private t: number
  private seq = 0
  private readonly timers = new Map<number, { at: number; every: number; fn: () => void }>()

  constructor(start = 0) {
    this.t = start
  }

  now(): number {
    return this.t
  }

  monotonic(): number {
    return this.t
  }

  setTimeout(fn: () => void, ms: number): ClockTimer {
    return this.arm(fn, ms, 0)
  }

  setInterval(fn: () => void, ms: number): ClockTimer {
    return this.arm(fn, ms, Math.max(1, ms))
  }

  clear(timer: ClockTimer | undefined): void {
    if (timer !== undefined) this.timers.delete((timer as { id: number }).id)
  }

  /** Timers armed and not yet fired or cleared. */
  get pending(): number {
    return this.timers.size
  }

  /** Moves time forward by `ms`, firing every timer due on the way (in time order). */
  advance(ms: number): void {
    const end = this.t + ms
    for (;;) {
      let next: [number, { at: number; every: number; fn: () => void }] | undefined
      for (const e of this.timers)
        if (e[1].at <= end && (next === undefined || e[1].at < next[1].at)) next = e
      if (next === undefined) break
      const [id, timer] = next
      this.t = Math.max(this.t, timer.at)
      if (timer.every > 0) timer.at += timer.every
      else this.timers.delete(id)
      timer.fn()
    }
    this.t = end
  }

  private arm(fn: () => void, ms: number, every: number): ClockTimer {
    const id = ++this.seq
    this.timers.set(id, { at: this.t + Math.max(0, ms), every, fn })
    return { id, unref: () => undefined } as ClockTimer
  }
}
