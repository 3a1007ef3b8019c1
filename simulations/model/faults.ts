/**
 * The fault plan, drawn up front from the scenario and the lower bound:
 * crashes (kill -9) with their detection delays and restarts, graceful
 * leaves, joins, and partitions that heal. The run replays it; every
 * strategy in a comparison gets the same plan.
 */
import { Rng } from '../core/rng.ts'
import type { FaultSpec } from '../scenario.ts'
import { draw } from './dist.ts'
import type { Mesh } from './mesh.ts'

export type FaultEvent =
  | { at: number; kind: 'crash'; node: number; detectMs: number }
  | { at: number; kind: 'recover'; node: number }
  | { at: number; kind: 'leave'; node: number; detectMs: number }
  | { at: number; kind: 'join'; node: number }
  | { at: number; kind: 'cut'; nodes: number[]; detectMs: number }
  | { at: number; kind: 'heal' }

export interface FaultPlan {
  events: FaultEvent[]
  /** When the safety phase ends (loss stops, partitions heal, down nodes may restart). */
  safetyEndsAt: number
  /** Restart nodes still down when the liveness phase begins. */
  recoverForLiveness: boolean
}

export function planFaults(
  f: FaultSpec,
  mesh: Mesh,
  spared: Set<number>,
  t0: number,
  lbMs: number,
  seed: number,
): FaultPlan {
  const rng = new Rng(seed)
  const events: FaultEvent[] = []
  const at = (w: [number, number]) => t0 + lbMs * (w[0] + (w[1] - w[0]) * rng.next())
  const down = new Set<number>()
  const pick = (fraction: number, includeOwners: boolean): number[] => {
    const pool: number[] = []
    for (let i = 0; i < mesh.initial; i++) if (includeOwners ? i !== 0 : !spared.has(i)) pool.push(i)
    rng.shuffle(pool)
    const out: number[] = []
    for (const i of pool) {
      if (out.length >= Math.round(fraction * mesh.initial)) break
      if (!down.has(i)) {
        down.add(i)
        out.push(i)
      }
    }
    return out
  }
  const c = f.crashes
  if (c !== undefined) {
    for (const node of pick(c.fraction, c.includeOwners ?? false)) {
      const t = at(c.windowLb)
      events.push({ at: t, kind: 'crash', node, detectMs: draw(c.detectMs, rng) })
      if (c.recoverAfterMs !== undefined)
        events.push({ at: t + draw(c.recoverAfterMs, rng), kind: 'recover', node })
    }
  }
  const l = f.leaves
  if (l !== undefined) {
    for (const node of pick(l.fraction, false))
      events.push({ at: at(l.windowLb), kind: 'leave', node, detectMs: 5 })
  }
  const j = f.joins
  if (j !== undefined) {
    const times: number[] = []
    for (let k = 0; k < j.count; k++) times.push(at(j.windowLb))
    times.sort((a, b) => a - b)
    for (let k = 0; k < j.count; k++) events.push({ at: times[k], kind: 'join', node: mesh.initial + k })
  }
  for (const p of f.partitions ?? []) {
    const t = t0 + lbMs * p.atLb
    const nodes: number[] = []
    for (let i = 0; i < mesh.initial; i++) if (!spared.has(i) && rng.next() < p.fraction) nodes.push(i)
    events.push({ at: t, kind: 'cut', nodes, detectMs: p.detectMs })
    events.push({ at: t + p.healAfterMs, kind: 'heal' })
  }
  events.sort((a, b) => a.at - b.at)
  const last = events.length > 0 ? events[events.length - 1].at : t0
  const safetyEndsAt = f.untilLb !== undefined ? t0 + lbMs * f.untilLb : last + 1
  return { events, safetyEndsAt, recoverForLiveness: c?.recoverForLiveness ?? true }
}
