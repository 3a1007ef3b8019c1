/** Drawing from a scenario's distributions, from a stream or from given uniforms (per-pair values). */
import type { Rng } from '../core/rng.ts'
import type { Dist } from '../scenario.ts'

export function draw(d: Dist, rng: Rng): number {
  return drawWith(d, rng.next(), rng.next())
}

/** The value at uniforms u, v in [0, 1) (v is used only by the log-normal). */
export function drawWith(d: Dist, u: number, v: number): number {
  switch (d.kind) {
    case 'fixed':
      return d.value
    case 'uniform':
      return d.min + (d.max - d.min) * u
    case 'exp':
      return -d.mean * Math.log(1 - u)
    case 'lognormal': {
      const z = Math.sqrt(-2 * Math.log(1 - u)) * Math.cos(2 * Math.PI * v)
      return clamp(d.median * Math.exp(d.sigma * z), d.min ?? 0, d.max ?? Number.POSITIVE_INFINITY)
    }
    case 'pareto': {
      if (!Number.isFinite(d.max)) return d.min / (1 - u) ** (1 / d.alpha)
      const ratio = (d.min / d.max) ** d.alpha
      return d.min / (1 - u * (1 - ratio)) ** (1 / d.alpha)
    }
    case 'choice': {
      const w = d.weights ?? d.values.map(() => 1)
      let total = 0
      for (const x of w) total += x
      let x = u * total
      for (let i = 0; i < d.values.length; i++) {
        x -= w[i]
        if (x < 0) return d.values[i]
      }
      return d.values[d.values.length - 1]
    }
  }
}

/** The distribution's mean (for sizing and for the study's tables). */
export function meanOf(d: Dist): number {
  switch (d.kind) {
    case 'fixed':
      return d.value
    case 'uniform':
      return (d.min + d.max) / 2
    case 'exp':
      return d.mean
    case 'lognormal':
      return d.median * Math.exp((d.sigma * d.sigma) / 2)
    case 'pareto': {
      const a = d.alpha
      if (!Number.isFinite(d.max)) return a > 1 ? (a * d.min) / (a - 1) : Number.POSITIVE_INFINITY
      const L = d.min
      const H = d.max
      if (a === 1) return ((H * L) / (H - L)) * Math.log(H / L)
      return ((L ** a / (1 - (L / H) ** a)) * a * (1 / L ** (a - 1) - 1 / H ** (a - 1))) / (a - 1)
    }
    case 'choice': {
      const w = d.weights ?? d.values.map(() => 1)
      let total = 0
      let sum = 0
      for (let i = 0; i < d.values.length; i++) {
        total += w[i]
        sum += w[i] * d.values[i]
      }
      return sum / total
    }
  }
}

function clamp(x: number, lo: number, hi: number): number {
  return x < lo ? lo : Math.min(x, hi)
}
