/**
 * A small seeded PRNG (mulberry32). The scheduler never uses a platform random source:
 * every random choice (victim, jitter) comes from here, so one seed and one
 * event sequence give one command sequence.
 */
export class Random {
  private state: number

  constructor(seed: number) {
    this.state = Math.floor(seed) >>> 0
  }

  /** Uniform in [0, 1). */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0
    let t = this.state
    t = Math.imul(t ^ (t >>> 15), t | 1)
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61)
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.next() * n)
  }
}
