/**
 * The simulated machines: each node's means (slots, speed factors, GPUs,
 * memory), its region, and who hears whose adverts. Nodes that join later
 * are drawn up front with the rest, so a run's mesh depends on the seed only.
 */
import { Rng } from '../core/rng.ts'
import type { NodeClass, ScenarioSpec } from '../scenario.ts'
import { draw } from './dist.ts'

export interface MeshNode {
  readonly index: number
  readonly key: string
  readonly slots: number
  readonly speed: number
  readonly gpus: number
  readonly gpuSpeed: number
  readonly memoryMB: number
  readonly region: number
  readonly nodeClass: number
}

export class Mesh {
  readonly nodes: MeshNode[] = []
  /** Nodes present at the start (the rest join later). */
  readonly initial: number
  /** Gossip neighbourhoods (symmetric); undefined in 'all' mode. */
  readonly neighbours: number[][] | undefined
  private readonly rng: Rng
  private readonly peersWanted: number
  private readonly linked: Set<number>[]

  constructor(spec: ScenarioSpec, seed: number) {
    this.rng = new Rng(seed)
    const joins = spec.faults.joins?.count ?? 0
    this.initial = spec.nodes
    const regions = spec.network.kind === 'regions' ? Math.max(1, spec.network.regions ?? 3) : 1
    const weights = spec.nodeClasses.map((c) => c.weight)
    for (let i = 0; i < spec.nodes + joins; i++) {
      const forced = i >= spec.nodes ? spec.faults.joins?.nodeClass : undefined
      const k = forced ?? this.rng.weighted(weights)
      this.nodes.push(this.makeNode(i, k, spec.nodeClasses[k], this.rng.int(regions)))
    }
    const g = spec.network.gossip
    this.peersWanted = g.mode === 'neighbourhood' ? g.peers : 0
    this.linked = g.mode === 'neighbourhood' ? this.nodes.map(() => new Set<number>()) : []
    this.neighbours = g.mode === 'neighbourhood' ? this.buildNeighbourhoods(spec.nodes) : undefined
  }

  get size(): number {
    return this.nodes.length
  }

  private makeNode(index: number, k: number, c: NodeClass, region: number): MeshNode {
    const slots = Math.max(1, Math.round(draw(c.slots, this.rng)))
    const speed = Math.max(0.01, draw(c.speed, this.rng))
    const gpuSpeed = c.gpuSpeed === undefined ? 1 : Math.max(0.01, draw(c.gpuSpeed, this.rng))
    return {
      index,
      key: `n${index}`,
      slots,
      speed,
      gpus: c.gpus,
      gpuSpeed,
      memoryMB: c.memoryMB,
      region,
      nodeClass: k,
    }
  }

  /** A random graph: each node links to peers/2 others drawn at random (both ways). */
  private buildNeighbourhoods(n: number): number[][] {
    const adj: number[][] = this.nodes.map(() => [])
    for (let i = 0; i < n; i++) this.link(adj, i, n)
    return adj
  }

  private link(adj: number[][], i: number, among: number): void {
    const seen = this.linked
    const want = Math.min(Math.ceil(this.peersWanted / 2), among - 1)
    for (let tries = 0, made = 0; made < want && tries < want * 8; tries++) {
      const j = this.rng.int(among)
      if (j === i || seen[i].has(j)) continue
      seen[i].add(j)
      seen[j].add(i)
      adj[i].push(j)
      adj[j].push(i)
      made++
    }
  }

  /** Links a joining node into the gossip graph (to nodes below it). */
  joinNeighbourhood(i: number): void {
    const adj = this.neighbours
    if (adj !== undefined) this.link(adj, i, i)
  }

  /** Total CPU speed (slots × speed) and GPU speed of the initial nodes. */
  capacity(): { cpu: number; gpu: number; maxSpeed: number; maxGpuSpeed: number; slots: number } {
    let cpu = 0
    let gpu = 0
    let maxSpeed = 0
    let maxGpuSpeed = 0
    let slots = 0
    for (let i = 0; i < this.initial; i++) {
      const n = this.nodes[i]
      cpu += n.slots * n.speed
      slots += n.slots
      gpu += n.gpus * n.gpuSpeed
      if (n.speed > maxSpeed) maxSpeed = n.speed
      if (n.gpus > 0 && n.gpuSpeed > maxGpuSpeed) maxGpuSpeed = n.gpuSpeed
    }
    return { cpu, gpu, maxSpeed, maxGpuSpeed, slots }
  }
}
