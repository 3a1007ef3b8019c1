/**
 * The workload: every job of the scenario with its tasks drawn up front
 * (costs, resources, dependency graph), numbered with global task ids
 * (job base + index) so per-task metrics live in flat typed arrays, and the
 * lower bound on makespan: max(total work / total speed, longest chain).
 */
import type { JobSpec, TaskInput } from '../../src/scheduler/index.ts'
import { Rng } from '../core/rng.ts'
import type { JobPlan, ScenarioSpec } from '../scenario.ts'
import { draw } from './dist.ts'
import type { Mesh } from './mesh.ts'

export interface SimJob {
  readonly id: string
  readonly number: number
  readonly owner: number
  readonly plan: JobPlan
  readonly spec: JobSpec
  readonly inputs: TaskInput[]
  /** Global id of task 0. */
  readonly base: number
  readonly size: number
  readonly submitAt: number
  readonly gpu: boolean
  readonly slotCost: number
  /** Longest dependency chain at the fastest eligible node (ms). */
  readonly chainMs: number
  readonly value: Uint8Array
}

export interface LowerBound {
  ms: number
  workOverSpeedMs: number
  gpuWorkOverSpeedMs: number
  chainMs: number
  /** Total work at speed 1 (slot-ms). */
  workMs: number
}

export class Workload {
  readonly jobs: SimJob[] = []
  readonly byId = new Map<string, SimJob>()
  readonly total: number
  /** Cost at speed 1 per global task id. */
  readonly cost: Float64Array
  /** Dependents of each task (global ids), CSR. */
  readonly depOffsets: Int32Array
  readonly depTargets: Int32Array
  /** Dependencies per task. */
  readonly depCount: Int32Array
  readonly jobOf: Int32Array
  readonly firstSubmitAt: number
  readonly bound: LowerBound

  constructor(spec: ScenarioSpec, mesh: Mesh, seed: number) {
    const rng = new Rng(seed)
    let base = 0
    let number = 0
    for (const plan of spec.jobs) {
      for (let k = 0; k < plan.count; k++) {
        const owner = plan.owner === 'spread' ? Math.floor((k * spec.nodes) / plan.count) : plan.owner
        if (owner < 0 || owner >= spec.nodes)
          throw new Error(`job ${plan.name}: owner ${owner} is not a node`)
        const job = this.makeJob(plan, number++, k, owner, base, rng, mesh)
        this.jobs.push(job)
        this.byId.set(job.id, job)
        base += job.size
      }
    }
    this.total = base
    this.cost = new Float64Array(base)
    this.depCount = new Int32Array(base)
    this.jobOf = new Int32Array(base)
    const counts = new Int32Array(base + 1)
    for (const job of this.jobs) {
      for (const t of job.inputs) {
        const g = job.base + t.index
        this.cost[g] = t.costHintMs ?? 0
        this.depCount[g] = t.deps.length
        this.jobOf[g] = job.number
        for (const d of t.deps) counts[job.base + d]++
      }
    }
    this.depOffsets = new Int32Array(base + 1)
    for (let g = 0; g < base; g++) this.depOffsets[g + 1] = this.depOffsets[g] + counts[g]
    this.depTargets = new Int32Array(this.depOffsets[base])
    const fill = this.depOffsets.slice(0, base)
    for (const job of this.jobs) {
      for (const t of job.inputs)
        for (const d of t.deps) this.depTargets[fill[job.base + d]++] = job.base + t.index
    }
    this.firstSubmitAt = this.jobs.reduce((m, j) => Math.min(m, j.submitAt), Number.POSITIVE_INFINITY)
    this.bound = this.lowerBound(mesh)
  }

  private makeJob(
    plan: JobPlan,
    number: number,
    k: number,
    owner: number,
    base: number,
    rng: Rng,
    mesh: Mesh,
  ): SimJob {
    const id = `${plan.name}-${k}`
    const spec: JobSpec = {
      id,
      owner: mesh.nodes[owner].key,
      work: { kind: 'noop' },
      resources: { ...plan.resources },
      timeoutMs: 0,
      maxAttempts: plan.maxAttempts,
      retries: plan.retries,
    }
    const input = new Uint8Array(plan.inputBytes)
    const inputs: TaskInput[] = []
    const costs = new Float64Array(plan.tasks)
    const given = plan.costsMs
    for (let i = 0; i < plan.tasks; i++)
      costs[i] = Math.max(0, given !== undefined ? given[i % given.length] : draw(plan.costMs, rng))
    if (plan.order === 'largest-first') costs.sort().reverse()
    for (let i = 0; i < plan.tasks; i++)
      inputs.push({ index: i, input, deps: drawDeps(plan, i, rng), costHintMs: costs[i] })
    const gpu = plan.resources.gpu > 0
    const cap = mesh.capacity()
    const speed = gpu ? cap.maxGpuSpeed : cap.maxSpeed
    const chain = longestChain(inputs, costs)
    return {
      id,
      number,
      owner,
      plan,
      spec,
      inputs,
      base,
      size: plan.tasks,
      submitAt: Math.max(0, draw(plan.submitAtMs, rng)),
      gpu,
      slotCost: plan.resources.cpu > 1 ? Math.ceil(plan.resources.cpu) : 1,
      chainMs: speed > 0 ? chain / speed : Number.POSITIVE_INFINITY,
      value: new Uint8Array(plan.resultBytes),
    }
  }

  /** max(work / speed for CPU and for GPU work, the longest chain after its job's submit). */
  private lowerBound(mesh: Mesh): LowerBound {
    const cap = mesh.capacity()
    let cpuWork = 0
    let gpuWork = 0
    let chainMs = 0
    for (const job of this.jobs) {
      let w = 0
      for (let i = 0; i < job.size; i++) w += this.cost[job.base + i]
      if (job.gpu) gpuWork += w * Math.ceil(job.plan.resources.gpu)
      else cpuWork += w * job.slotCost
      chainMs = Math.max(chainMs, job.submitAt - this.firstSubmitAt + job.chainMs)
    }
    const workOverSpeedMs = cap.cpu > 0 ? cpuWork / cap.cpu : 0
    const gpuWorkOverSpeedMs = gpuWork === 0 ? 0 : cap.gpu > 0 ? gpuWork / cap.gpu : Number.POSITIVE_INFINITY
    return {
      ms: Math.max(workOverSpeedMs, gpuWorkOverSpeedMs, chainMs),
      workOverSpeedMs,
      gpuWorkOverSpeedMs,
      chainMs,
      workMs: cpuWork + gpuWork,
    }
  }

  job(id: string): SimJob | undefined {
    return this.byId.get(id)
  }
}

function drawDeps(plan: JobPlan, i: number, rng: Rng): number[] {
  const g = plan.graph
  if (g === undefined || g.kind === 'independent' || i === 0) return []
  if (g.kind === 'random') {
    if (!rng.chance(g.p)) return []
    const k = 1 + rng.int(g.maxDeps)
    const out = new Set<number>()
    for (let d = 0; d < k; d++) out.add(rng.int(i))
    return [...out].sort((a, b) => a - b)
  }
  const per = Math.max(1, Math.ceil(plan.tasks / g.layers))
  const layer = Math.floor(i / per)
  if (layer === 0) return []
  const lo = (layer - 1) * per
  const out = new Set<number>()
  for (let d = 0; d < g.fanIn; d++) out.add(lo + rng.int(per))
  return [...out].sort((a, b) => a - b)
}

/** Longest path through the graph by cost (deps always point to earlier tasks). */
function longestChain(inputs: TaskInput[], costs: Float64Array): number {
  const finish = new Float64Array(inputs.length)
  let best = 0
  for (const t of inputs) {
    let start = 0
    for (const d of t.deps) if (finish[d] > start) start = finish[d]
    finish[t.index] = start + costs[t.index]
    if (finish[t.index] > best) best = finish[t.index]
  }
  return best
}
