/**
 * The simulator's one source of randomness: a seeded mulberry32 stream with
 * the distributions the models draw from, and a stateless hash for values
 * fixed per pair of nodes (link latencies) that need no N² table.
 */

import { Random } from '../../src/scheduler/random.ts'

/** The scheduler's own mulberry32 (next, int), plus the draws the models need. */
export class Rng extends Random {
  /** A 31-bit seed for a sub-generator (a node's scheduler, a model). */
  seed(): number {
    return this.int(2 ** 31)
  }

  uniform(min: number, max: number): number {
    return min + (max - min) * this.next()
  }

  chance(p: number): boolean {
    return p > 0 && this.next() < p
  }

  /** Exponential with the given mean. */
  exp(mean: number): number {
    return -mean * Math.log(1 - this.next())
  }

  /** Standard normal (Box-Muller; one draw per call keeps the stream simple). */
  normal(): number {
    const u = 1 - this.next()
    const v = this.next()
    return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v)
  }

  /** Log-normal with the given median and sigma of the underlying normal. */
  lognormal(median: number, sigma: number): number {
    return median * Math.exp(sigma * this.normal())
  }

  /** Pareto with shape `alpha` and scale `min`, truncated to [min, max] by inversion. */
  pareto(alpha: number, min: number, max: number): number {
    const u = this.next()
    if (!Number.isFinite(max)) return min / (1 - u) ** (1 / alpha)
    const ratio = (min / max) ** alpha
    return min / (1 - u * (1 - ratio)) ** (1 / alpha)
  }

  /** Index drawn with probability proportional to `weights`. */
  weighted(weights: readonly number[]): number {
    let total = 0
    for (const w of weights) total += w
    let x = this.next() * total
    for (let i = 0; i < weights.length; i++) {
      x -= weights[i]
      if (x < 0) return i
    }
    return weights.length - 1
  }

  /** Fisher-Yates, in place. */
  shuffle<T>(a: T[]): T[] {
    for (let i = a.length - 1; i > 0; i--) {
      const j = this.int(i + 1)
      const t = a[i]
      a[i] = a[j]
      a[j] = t
    }
    return a
  }
}

/** A stateless uniform in [0, 1) from a seed and two integers (order-insensitive). */
export function pairUniform(seed: number, a: number, b: number): number {
  const lo = Math.min(a, b)
  const hi = Math.max(a, b)
  let h = (seed ^ Math.imul(lo + 1, 0x9e3779b1) ^ Math.imul(hi + 1, 0x85ebca77)) >>> 0
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d)
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b)
  h ^= h >>> 16
  return (h >>> 0) / 4294967296
}
