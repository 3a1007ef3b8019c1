/**
 * The discrete-event loop shared by every strategy: virtual time, the event
 * heap, the world's seeded random stream, the mesh, network and workload
 * models, the fault plan, the simulated executor (a run of cost c on a node
 * of speed s takes c / s ms), metrics, and the checkers that run after every
 * step: a result is accepted at most once, a job finishes once and only with
 * every task accepted, and (through the strategy) each holder's own
 * invariants. A run has a safety phase with faults, then a liveness phase
 * without them that must converge within the step and time budgets.
 */

import type { FaultEvent, FaultPlan } from '../model/faults.ts'
import type { Mesh } from '../model/mesh.ts'
import { Network } from '../model/network.ts'
import type { SimJob, Workload } from '../model/workload.ts'
import type { ScenarioSpec } from '../scenario.ts'
import { EventHeap } from './heap.ts'
import { Metrics } from './metrics.ts'
import { Rng } from './rng.ts'

export type StrategyName = 'gridnode' | 'central' | 'random-push'
export const STRATEGIES: readonly StrategyName[] = ['gridnode', 'central', 'random-push']

/** Event kinds below this are the loop's own; strategies number theirs from here. */
export const FIRST_STRATEGY_KIND = 16
const K_SUBMIT = 0
const K_FAULT = 1
const K_SAFETY_END = 2
const K_RUN_DONE = 3

/**
 * A task given to a node's executor. Runs beyond the node's slots wait, first come first
 * started, as tasks the scheduler feeds two per slot wait at a worker (PIPELINE_TASK_MS): a
 * waiting run has `start` NaN and holds no slot. The real pools queue a waiting task at one
 * worker; here it takes the first slot that frees, which is slightly kinder.
 */
export interface Run {
  readonly gid: number
  readonly attempt: number
  readonly node: number
  readonly slots: number
  /** Run time on this node (cost / speed). */
  readonly ms: number
  start: number
  end: number
  lane: number
}

export interface Strategy {
  readonly name: StrategyName
  /** After every job finished, keep running this long, then look for leftovers. */
  readonly settleMs: number
  start(): void
  submit(job: SimJob): void
  fire(kind: number, a: number, b: number, x: number, obj: unknown): void
  runDone(run: Run): void
  crashed(node: number, detectMs: number): void
  recovered(node: number): void
  joined(node: number): void
  cut(nodes: number[], detectMs: number): void
  healed(nodes: number[]): void
  /** Every node's full invariant check. */
  checkAll(): void
  /** Nodes still holding work once every job finished and things settled. */
  leftovers(): string[]
  stats(): Record<string, number>
}

export interface Model {
  spec: ScenarioSpec
  mesh: Mesh
  work: Workload
  faults: FaultPlan
  netSeed: number
}

export type Outcome = 'ok' | 'correctness' | 'liveness' | 'crash'

export interface LoopResult {
  outcome: Outcome
  violations: string[]
  steps: number
  staleSteps: number
  endAt: number
  /** When the last job finished (NaN if one never did). */
  lastFinishAt: number
  wallMs: number
}

export interface Progress {
  strategy: StrategyName
  now: number
  steps: number
  done: number
  total: number
  wallMs: number
}

export class Sim {
  readonly heap = new EventHeap(1 << 16)
  readonly rng: Rng
  readonly net: Network
  readonly mesh: Mesh
  readonly work: Workload
  readonly spec: ScenarioSpec
  readonly faults: FaultPlan
  readonly metrics: Metrics
  readonly alive: Uint8Array
  readonly inc: Int32Array
  /** Nodes that left for good (not restarted for liveness). */
  readonly left: Uint8Array
  /** Runs given to each node's executor (started or waiting), by global task id. */
  readonly runs: Map<number, Run>[]
  /** Slots held by started runs, per node. */
  private readonly busy: Int32Array
  /** Runs waiting for a slot, per node, in the order they were given. */
  private readonly waiting: Run[][]
  readonly jobFinishedAt: Float64Array
  readonly jobStatus: string[]
  readonly violations: string[] = []
  phase: 'safety' | 'liveness' = 'safety'
  now = 0
  steps = 0
  staleSteps = 0
  acceptedSlotMs = 0
  acceptedOk = 0
  acceptedFailed = 0
  jobsOpen: number
  private strategy!: Strategy
  private readonly depsLeft: Int32Array
  private readonly lanes: Uint8Array[] | undefined
  private readonly cutNodes: number[] = []
  private progress: ((p: Progress) => void) | undefined

  constructor(model: Model, seed: number) {
    this.spec = model.spec
    this.mesh = model.mesh
    this.work = model.work
    this.faults = model.faults
    this.rng = new Rng(seed)
    this.net = new Network(model.spec.network, model.mesh, model.netSeed)
    this.net.loss = model.spec.faults.loss
    const n = model.mesh.size
    this.alive = new Uint8Array(n)
    this.inc = new Int32Array(n)
    this.left = new Uint8Array(n)
    this.runs = Array.from({ length: n }, () => new Map<number, Run>())
    this.busy = new Int32Array(n)
    this.waiting = Array.from({ length: n }, () => [])
    const t0 = model.work.firstSubmitAt
    const binMs = Math.max(1, model.work.bound.ms / 100)
    this.metrics = new Metrics(model.work.total, t0, binMs, model.spec.gantt ?? false)
    this.jobFinishedAt = new Float64Array(model.work.jobs.length).fill(Number.NaN)
    this.jobStatus = model.work.jobs.map(() => '')
    this.jobsOpen = model.work.jobs.length
    this.depsLeft = Int32Array.from(model.work.depCount)
    this.lanes = model.spec.gantt ? model.mesh.nodes.map((m) => new Uint8Array(m.slots * 8)) : undefined
  }

  attach(strategy: Strategy, progress?: (p: Progress) => void): void {
    this.strategy = strategy
    this.progress = progress
  }

  schedule(at: number, kind: number, a: number, b: number, x: number, obj: unknown): void {
    this.heap.push(Math.max(at, this.now), kind, a, b, x, obj)
  }

  violation(msg: string): void {
    if (this.violations.length < 100) this.violations.push(`${this.now.toFixed(3)} ms: ${msg}`)
  }

  key(node: number): string {
    return this.mesh.nodes[node].key
  }

  // ---- the executor -----------------------------------------------------------

  /**
   * Gives task `gid` to `node`'s executor: it starts now if a slot is free (or nothing runs
   * there), else once one frees; it ends (runDone) cost / speed after it started.
   */
  beginRun(node: number, gid: number, attempt: number): Run {
    const job = this.work.jobs[this.work.jobOf[gid]]
    const m = this.mesh.nodes[node]
    const ms = this.work.cost[gid] / (job.gpu ? m.gpuSpeed : m.speed)
    const run: Run = {
      gid,
      attempt,
      node,
      slots: job.slotCost,
      ms,
      start: Number.NaN,
      end: Number.NaN,
      lane: 0,
    }
    this.runs[node].set(gid, run)
    if (this.busy[node] === 0 || this.busy[node] + run.slots <= m.slots) this.startRun(run)
    else this.waiting[node].push(run)
    return run
  }

  private startRun(run: Run): void {
    run.start = this.now
    run.end = this.now + run.ms
    run.lane = this.takeLane(run.node, run.slots)
    this.busy[run.node] += run.slots
    this.metrics.starts[run.gid]++
    this.metrics.slotsBusy(this.now, run.slots)
    this.heap.push(run.end, K_RUN_DONE, run.node, this.inc[run.node], 0, run)
  }

  /** Starts the runs waiting at `node` that fit the slots now free, in order. */
  private startWaiting(node: number): void {
    const queue = this.waiting[node]
    const slots = this.mesh.nodes[node].slots
    while (queue.length > 0 && (this.busy[node] === 0 || this.busy[node] + queue[0].slots <= slots))
      this.startRun(queue.shift()!)
  }

  /** Stops a run before its end (cancelled, or its node crashed); a waiting one never starts. */
  cancelRun(run: Run): void {
    if (this.runs[run.node].get(run.gid) !== run) return
    this.runs[run.node].delete(run.gid)
    if (Number.isNaN(run.start)) {
      const queue = this.waiting[run.node]
      queue.splice(queue.indexOf(run), 1)
      return
    }
    this.closeRun(run, false)
    this.startWaiting(run.node)
  }

  private closeRun(run: Run, completed: boolean): void {
    this.busy[run.node] -= run.slots
    this.metrics.slotsBusy(this.now, -run.slots)
    if (completed) this.metrics.finishes[run.gid]++
    if (this.lanes !== undefined) {
      const lanes = this.lanes[run.node]
      for (let i = 0; i < run.slots; i++) lanes[run.lane + i] = 0
      this.metrics.gantt?.push({
        node: run.node,
        lane: run.lane,
        start: run.start,
        end: this.now,
        job: this.work.jobOf[run.gid],
        ok: completed,
      })
    }
  }

  private takeLane(node: number, slots: number): number {
    const lanes = this.lanes?.[node]
    if (lanes === undefined) return 0
    for (let i = 0; i + slots <= lanes.length; i++) {
      let free = true
      for (let k = 0; k < slots; k++) if (lanes[i + k] !== 0) free = false
      if (!free) continue
      for (let k = 0; k < slots; k++) lanes[i + k] = 1
      return i
    }
    return 0
  }

  // ---- what owners report -------------------------------------------------------

  /** The owner accepted a final result for task `gid`: checked exactly once. */
  accept(gid: number, ok: boolean, durationMs: number, slots: number): void {
    const m = this.metrics
    if (m.accepted[gid] !== 0) {
      this.violation(`task ${this.taskName(gid)}: a second final result was accepted`)
      return
    }
    m.accepted[gid] = 1
    m.doneAt[gid] = this.now
    this.acceptedSlotMs += durationMs * slots
    if (ok) this.acceptedOk++
    else this.acceptedFailed++
    const w = this.work
    for (let k = w.depOffsets[gid]; k < w.depOffsets[gid + 1]; k++) {
      const d = w.depTargets[k]
      if (--this.depsLeft[d] === 0) m.readyAt[d] = this.now
    }
  }

  jobFinished(job: number, status: string): void {
    if (!Number.isNaN(this.jobFinishedAt[job])) {
      this.violation(`job ${this.work.jobs[job].id} finished twice`)
      return
    }
    const j = this.work.jobs[job]
    for (let i = 0; i < j.size; i++) {
      if (this.metrics.accepted[j.base + i] === 0) {
        this.violation(`job ${j.id} finished (${status}) without a result for task ${i}`)
        break
      }
    }
    this.jobFinishedAt[job] = this.now
    this.jobStatus[job] = status
    this.jobsOpen--
  }

  taskName(gid: number): string {
    const j = this.work.jobs[this.work.jobOf[gid]]
    return `${j.id}/${gid - j.base}`
  }

  // ---- the loop -----------------------------------------------------------------

  run(): LoopResult {
    const wall0 = performance.now()
    const s = this.strategy
    for (let i = 0; i < this.mesh.initial; i++) this.setAlive(i, true)
    for (const job of this.work.jobs) this.heap.push(job.submitAt, K_SUBMIT, job.number, 0, 0, undefined)
    for (const f of this.faults.events) this.heap.push(f.at, K_FAULT, 0, 0, 0, f)
    this.heap.push(this.faults.safetyEndsAt, K_SAFETY_END, 0, 0, 0, undefined)
    const budget = this.spec.stepBudget ?? 200_000_000
    const timeLimit = this.faults.safetyEndsAt + (this.spec.livenessLb ?? 20) * this.work.bound.ms + 60_000
    let outcome: Outcome = 'ok'
    let lastFinishAt = Number.NaN
    let settleUntil = Number.POSITIVE_INFINITY
    try {
      s.start()
      const top = this.heap.top
      while (this.heap.pop()) {
        this.now = top.at
        if (top.kind >= FIRST_STRATEGY_KIND) s.fire(top.kind, top.a, top.b, top.x, top.obj)
        else this.fireOwn(top.kind, top.a, top.b, top.obj)
        this.steps++
        if ((this.steps & 0x3fff) === 0) this.report(wall0)
        if (this.jobsOpen === 0 && this.phase === 'liveness' && settleUntil === Number.POSITIVE_INFINITY) {
          lastFinishAt = this.lastFinish()
          this.metrics.advance(lastFinishAt)
          this.metrics.stopAt = lastFinishAt
          settleUntil = this.now + s.settleMs
        }
        if (this.now >= settleUntil) break
        if (this.steps >= budget || this.now > timeLimit) {
          outcome = 'liveness'
          this.violation(
            `liveness: ${this.jobsOpen} jobs open after ${this.steps} steps and ${this.now.toFixed(0)} ms`,
          )
          break
        }
      }
      if (this.jobsOpen > 0 && outcome === 'ok') {
        outcome = 'liveness'
        this.violation(`liveness: ${this.jobsOpen} jobs open and nothing left to happen`)
      }
      s.checkAll()
      if (outcome === 'ok') for (const l of s.leftovers()) this.violation(`quiescence: ${l}`)
    } catch (err) {
      outcome = 'crash'
      this.violations.push(`crash at ${this.now} ms: ${(err as Error).stack ?? String(err)}`)
    }
    this.metrics.advance(Number.isNaN(lastFinishAt) ? this.now : lastFinishAt)
    if (outcome === 'ok' && this.violations.length > 0) outcome = 'correctness'
    this.report(wall0)
    return {
      outcome,
      violations: this.violations,
      steps: this.steps,
      staleSteps: this.staleSteps,
      endAt: this.now,
      lastFinishAt,
      wallMs: performance.now() - wall0,
    }
  }

  private lastFinish(): number {
    let t = Number.NEGATIVE_INFINITY
    for (const x of this.jobFinishedAt) if (x > t) t = x
    return t
  }

  private report(wall0: number): void {
    this.progress?.({
      strategy: this.strategy.name,
      now: this.now,
      steps: this.steps,
      done: this.acceptedOk + this.acceptedFailed,
      total: this.work.total,
      wallMs: performance.now() - wall0,
    })
  }

  private fireOwn(kind: number, a: number, b: number, obj: unknown): void {
    switch (kind) {
      case K_SUBMIT: {
        const job = this.work.jobs[a]
        for (const t of job.inputs)
          if (t.deps.length === 0) this.metrics.readyAt[job.base + t.index] = this.now
        this.strategy.submit(job)
        return
      }
      case K_RUN_DONE: {
        const run = obj as Run
        if (this.inc[a] !== b || this.runs[a].get(run.gid) !== run) {
          this.staleSteps++
          return
        }
        this.runs[a].delete(run.gid)
        this.closeRun(run, true)
        // The worker starts the task it holds before the scheduler hears of this one's end.
        this.startWaiting(a)
        this.strategy.runDone(run)
        return
      }
      case K_FAULT:
        this.applyFault(obj as FaultEvent)
        return
      case K_SAFETY_END:
        this.endSafety()
        return
      default:
        throw new Error(`unknown event kind ${kind}`)
    }
  }

  private setAlive(node: number, up: boolean): void {
    if ((this.alive[node] === 1) === up) return
    this.alive[node] = up ? 1 : 0
    this.metrics.slotsAlive(this.now, up ? this.mesh.nodes[node].slots : -this.mesh.nodes[node].slots)
  }

  /** kill -9: the node's state and runs are gone; peers hear of it after detectMs. */
  crash(node: number, detectMs: number): void {
    if (this.alive[node] === 0) return
    this.setAlive(node, false)
    this.inc[node]++
    for (const run of this.waiting[node].splice(0)) this.runs[node].delete(run.gid)
    for (const run of [...this.runs[node].values()]) this.cancelRun(run)
    this.strategy.crashed(node, detectMs)
  }

  recover(node: number): void {
    if (this.alive[node] === 1 || this.left[node] === 1) return
    this.setAlive(node, true)
    this.inc[node]++
    this.strategy.recovered(node)
  }

  private applyFault(f: FaultEvent): void {
    if (this.phase !== 'safety') return
    switch (f.kind) {
      case 'crash':
        this.crash(f.node, f.detectMs)
        return
      case 'recover':
        this.recover(f.node)
        return
      case 'leave':
        this.crash(f.node, f.detectMs)
        this.left[f.node] = 1
        return
      case 'join':
        this.mesh.joinNeighbourhood(f.node)
        this.setAlive(f.node, true)
        this.strategy.joined(f.node)
        return
      case 'cut':
        this.heal()
        for (const n of f.nodes) this.net.group[n] = 1
        this.cutNodes.push(...f.nodes)
        this.strategy.cut(f.nodes, f.detectMs)
        return
      case 'heal':
        this.heal()
        return
    }
  }

  private heal(): void {
    if (this.cutNodes.length === 0) return
    const nodes = this.cutNodes.splice(0)
    for (const n of nodes) this.net.group[n] = 0
    this.strategy.healed(nodes)
  }

  private endSafety(): void {
    this.net.loss = 0
    this.heal()
    if (this.faults.recoverForLiveness) {
      for (let i = 0; i < this.mesh.size; i++) {
        const present = i < this.mesh.initial || this.joinedAlready(i)
        if (present && this.alive[i] === 0) this.recover(i)
      }
    }
    this.phase = 'liveness'
    this.strategy.checkAll()
  }

  private joinedAlready(i: number): boolean {
    return this.faults.events.some((f) => f.kind === 'join' && f.node === i && f.at <= this.now)
  }
}
