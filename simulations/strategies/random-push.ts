/**
 * Baseline: random push. When tasks become ready (at submit, or when their
 * dependencies are done) the owner assigns each to the next node in round
 * robin (GPU tasks to the next GPU node) and pushes them, one message per
 * node per burst. Nodes run what they are given in order, never steal. An
 * owner that sees a node gone re-assigns the tasks it had given it.
 */
import { MSG } from '../core/metrics.ts'
import type { Run, Sim } from '../core/sim.ts'
import type { SimJob } from '../model/workload.ts'
import { Baseline, DONE, FIRST_BASELINE_KIND, HELD, type Packet } from './baseline.ts'
import { HEADER_BYTES } from './wire.ts'

const W_PUSH = 1
const W_RESULT = 2
const K_GONE = FIRST_BASELINE_KIND
const K_BACK = FIRST_BASELINE_KIND + 1

interface NodeQueue {
  cpu: number[]
  gpu: number[]
  cpuHead: number
  gpuHead: number
  freeSlots: number
  freeGpus: number
}

export class RandomPushStrategy extends Baseline {
  readonly name = 'random-push' as const
  private readonly q: NodeQueue[]
  /** Each owner's view: nodes it has seen go (1) and its round-robin cursors. */
  private readonly gone = new Map<number, Uint8Array>()
  private readonly cursor = new Map<number, { cpu: number; gpu: number }>()
  private readonly heldBy: Set<number>[]
  private readonly present: Uint8Array
  private reassigned = 0

  constructor(sim: Sim) {
    super(sim)
    this.q = sim.mesh.nodes.map((m) => ({
      cpu: [],
      gpu: [],
      cpuHead: 0,
      gpuHead: 0,
      freeSlots: m.slots,
      freeGpus: m.gpus,
    }))
    this.heldBy = sim.mesh.nodes.map(() => new Set<number>())
    this.present = new Uint8Array(sim.mesh.size)
    for (const j of sim.work.jobs) {
      if (!this.gone.has(j.owner)) {
        this.gone.set(j.owner, new Uint8Array(sim.mesh.size))
        this.cursor.set(j.owner, { cpu: j.owner, gpu: j.owner })
      }
    }
  }

  start(): void {
    for (let i = 0; i < this.sim.mesh.initial; i++) this.present[i] = 1
  }

  submit(job: SimJob): void {
    this.assign(job.owner, this.roots(job))
  }

  /** Round robin over the nodes this owner believes are up and can run the task. */
  private assign(owner: number, gids: number[]): void {
    const sim = this.sim
    const gone = this.gone.get(owner)!
    const cur = this.cursor.get(owner)!
    const batches = new Map<number, number[]>()
    for (const g of gids) {
      if (this.state[g] === DONE) continue
      const gpu = sim.work.jobs[sim.work.jobOf[g]].gpu
      const n = sim.mesh.size
      let target = -1
      for (let k = 0; k < n; k++) {
        const c = ((gpu ? cur.gpu : cur.cpu) + 1 + k) % n
        if (this.present[c] === 0 || gone[c] === 1) continue
        if (gpu && sim.mesh.nodes[c].gpus === 0) continue
        target = c
        break
      }
      if (target < 0) throw new Error(`random-push: no node can run task ${sim.taskName(g)}`)
      if (gpu) cur.gpu = target
      else cur.cpu = target
      this.state[g] = HELD
      this.holder[g] = target
      this.heldBy[target].add(g)
      let b = batches.get(target)
      if (b === undefined) {
        b = []
        batches.set(target, b)
      }
      b.push(g)
    }
    for (const [to, b] of batches) {
      const inputBytes = sim.work.jobs[sim.work.jobOf[b[0]]].plan.inputBytes
      this.send(owner, to, MSG.push, HEADER_BYTES + b.length * (40 + inputBytes), W_PUSH, b)
    }
  }

  protected arrive(p: Packet): void {
    if (p.what === W_PUSH) {
      const q = this.q[p.to]
      for (const g of p.gids) (this.sim.work.jobs[this.sim.work.jobOf[g]].gpu ? q.gpu : q.cpu).push(g)
      this.startRunnable(p.to)
      return
    }
    if (p.what === W_RESULT) {
      const g = p.gids[0]
      if (this.state[g] === HELD) this.heldBy[this.holder[g]].delete(g)
      const ready = this.ownerAccepts(g, p.x)
      if (ready.length > 0) this.assign(p.to, ready)
      return
    }
    throw new Error(`random-push: unknown packet ${p.what}`)
  }

  private startRunnable(node: number): void {
    const q = this.q[node]
    while (q.gpuHead < q.gpu.length && q.freeGpus > 0 && q.freeSlots > 0) {
      q.freeGpus--
      q.freeSlots--
      this.sim.beginRun(node, q.gpu[q.gpuHead++], 0)
    }
    while (q.cpuHead < q.cpu.length && q.freeSlots > 0) {
      q.freeSlots--
      this.sim.beginRun(node, q.cpu[q.cpuHead++], 0)
    }
    if (q.cpuHead === q.cpu.length && q.cpuHead > 0) {
      q.cpu = []
      q.cpuHead = 0
    }
    if (q.gpuHead === q.gpu.length && q.gpuHead > 0) {
      q.gpu = []
      q.gpuHead = 0
    }
  }

  runDone(run: Run): void {
    const q = this.q[run.node]
    const job = this.sim.work.jobs[this.sim.work.jobOf[run.gid]]
    q.freeSlots++
    if (job.gpu) q.freeGpus++
    this.send(
      run.node,
      job.owner,
      MSG.results,
      HEADER_BYTES + 56 + job.plan.resultBytes,
      W_RESULT,
      [run.gid],
      0,
      run.end - run.start,
    )
    this.startRunnable(run.node)
  }

  private reset(node: number): void {
    const m = this.sim.mesh.nodes[node]
    this.q[node] = { cpu: [], gpu: [], cpuHead: 0, gpuHead: 0, freeSlots: m.slots, freeGpus: m.gpus }
  }

  crashed(node: number, detectMs: number): void {
    this.reset(node)
    for (const owner of this.gone.keys())
      this.sim.schedule(this.sim.now + detectMs, K_GONE, owner, node, 0, undefined)
  }

  protected timer(kind: number, a: number, b: number): void {
    const gone = this.gone.get(a)!
    if (kind === K_BACK) {
      gone[b] = 0
      return
    }
    if (kind !== K_GONE) throw new Error(`random-push: unknown timer ${kind}`)
    if (gone[b] === 1) return
    gone[b] = 1
    const mine: number[] = []
    for (const g of this.heldBy[b]) if (this.sim.work.jobs[this.sim.work.jobOf[g]].owner === a) mine.push(g)
    for (const g of mine) this.heldBy[b].delete(g)
    this.reassigned += mine.length
    this.assign(a, mine)
    if (this.sim.alive[b] === 1 && this.sim.net.reachable(a, b)) gone[b] = 0
  }

  recovered(node: number): void {
    this.reset(node)
    for (const owner of this.gone.keys())
      this.sim.schedule(this.sim.now + 20, K_BACK, owner, node, 0, undefined)
  }

  joined(node: number): void {
    this.present[node] = 1
  }

  cut(nodes: number[], detectMs: number): void {
    for (const owner of this.gone.keys())
      for (const n of nodes) this.sim.schedule(this.sim.now + detectMs, K_GONE, owner, n, 0, undefined)
  }

  healed(nodes: number[]): void {
    for (const owner of this.gone.keys())
      for (const n of nodes) this.sim.schedule(this.sim.now + 20, K_BACK, owner, n, 0, undefined)
  }

  protected checkTables(): void {
    for (let i = 0; i < this.q.length; i++) {
      const q = this.q[i]
      const m = this.sim.mesh.nodes[i]
      if (this.sim.alive[i] === 1 && q.freeSlots + this.sim.runs[i].size * 1 < 0)
        this.sim.violation(`random-push: node ${i} slot accounting is off`)
      if (q.freeSlots > m.slots || q.freeGpus > m.gpus)
        this.sim.violation(`random-push: node ${i} frees more than it has`)
    }
  }

  leftovers(): string[] {
    const out: string[] = []
    for (let i = 0; i < this.q.length; i++) {
      const q = this.q[i]
      if (this.sim.alive[i] === 1 && (q.cpuHead < q.cpu.length || q.gpuHead < q.gpu.length))
        out.push(`random-push: node ${i} still has queued tasks`)
    }
    return out
  }

  stats(): Record<string, number> {
    return { reassigned: this.reassigned, resent: this.resent }
  }
}
