/**
 * The network model: one-way latency per link (a base drawn once per pair
 * from the near or far distribution, by hash, so 10,000 nodes need no N²
 * table, plus exponential jitter per message), a per-node uplink whose
 * bandwidth makes large batches and result sets take time and queue, message
 * loss during the safety phase, and partitions (nodes in different groups
 * cannot reach each other).
 */
import { pairUniform, type Rng } from '../core/rng.ts'
import type { NetworkSpec } from '../scenario.ts'
import { drawWith } from './dist.ts'
import type { Mesh } from './mesh.ts'

export class Network {
  readonly spec: NetworkSpec
  private readonly mesh: Mesh
  private readonly seed: number
  private readonly bytesPerMs: number
  /** When each node's uplink is free again. */
  private readonly uplinkFreeAt: Float64Array
  /** Partition group per node: messages pass only inside a group. */
  readonly group: Uint8Array
  loss = 0
  bytes = 0

  constructor(spec: NetworkSpec, mesh: Mesh, seed: number) {
    this.spec = spec
    this.mesh = mesh
    this.seed = seed >>> 0
    this.bytesPerMs = spec.uplinkMBps > 0 ? spec.uplinkMBps * 1000 : Number.POSITIVE_INFINITY
    this.uplinkFreeAt = new Float64Array(mesh.size)
    this.group = new Uint8Array(mesh.size)
  }

  /** The link's base one-way latency (ms), fixed per pair. */
  baseMs(a: number, b: number): number {
    if (a === b) return 0
    const u = pairUniform(this.seed, a, b)
    const v = pairUniform(this.seed ^ 0x5bd1e995, a, b)
    const s = this.spec
    const far =
      s.kind === 'wan' || (s.kind === 'regions' && this.mesh.nodes[a].region !== this.mesh.nodes[b].region)
    return Math.max(0, drawWith(far ? s.farMs : s.nearMs, u, v))
  }

  /** Round-trip time the driver would report for the link (what adverts carry). */
  rttMs(a: number, b: number): number {
    return 2 * this.baseMs(a, b)
  }

  /** One-way delay of one message on the link. */
  delayMs(a: number, b: number, rng: Rng): number {
    const base = this.baseMs(a, b)
    const j = this.spec.jitter
    return j > 0 && base > 0 ? base + rng.exp(j * base) : base
  }

  /**
   * When a message of `bytes` sent now by `a` arrives at `b`: it waits for
   * a's uplink, takes bytes / bandwidth on it, then the link's delay.
   */
  arrival(now: number, a: number, b: number, bytes: number, rng: Rng): number {
    this.bytes += bytes
    let leave = now
    if (this.bytesPerMs !== Number.POSITIVE_INFINITY) {
      const start = Math.max(this.uplinkFreeAt[a], now)
      leave = start + bytes / this.bytesPerMs
      this.uplinkFreeAt[a] = leave
    }
    return leave + this.delayMs(a, b, rng)
  }

  reachable(a: number, b: number): boolean {
    return this.group[a] === this.group[b]
  }

  /** Draws whether one message is lost (safety phase only: loss is 0 afterwards). */
  lost(rng: Rng): boolean {
    return this.loss > 0 && rng.next() < this.loss
  }

  /** Time the uplink of `a` is busy from now (for tests). */
  backlogMs(now: number, a: number): number {
    return Math.max(0, this.uplinkFreeAt[a] - now)
  }
}
