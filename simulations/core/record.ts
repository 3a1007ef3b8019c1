/**
 * The JSON record of one run: the knobs the seed produced (printed at start
 * and kept here so a run can be replayed), the outcome and violations, and
 * the metrics. Numbers are rounded so the record reads well; it holds
 * nothing from the wall clock, so one seed gives one record, bit for bit.
 */

import { createHash } from 'node:crypto'
import { readdirSync, readFileSync } from 'node:fs'
import { meanOf } from '../model/dist.ts'
import type { FaultPlan } from '../model/faults.ts'
import type { ScenarioSpec } from '../scenario.ts'
import { MSG, MSG_NAMES } from './metrics.ts'
import { referenceSchedules } from './reference.ts'
import type { Built } from './runner.ts'
import type { LoopResult, Outcome, Sim, Strategy, StrategyName } from './sim.ts'

export interface RunMetrics {
  makespanMs: number
  lowerBoundMs: number
  makespanRatio: number
  meanLatencyMs: number
  p99LatencyMs: number
  utilization: number
  usefulUtilization: number
  stealMessagesPerTask: number
  schedulingMessagesPerTask: number
  messagesPerTask: number
  bytesMoved: number
  bytesPerTask: number
  tasksLost: number
  tasksFailed: number
  tasksRunTwice: number
  extraRuns: number
  wastedSlotMs: number
  wastedWorkShare: number
  duplicateResults: number
}

export interface RunRecord {
  scenario: string
  strategy: StrategyName
  seed: number
  nodes: number
  knobs: Record<string, unknown>
  mesh: { nodes: number; slots: number; cpuSpeed: number; gpus: number; gpuSpeed: number; joins: number }
  workload: { jobs: number; tasks: number; workMs: number; meanCostMs: number; maxCostMs: number }
  lowerBound: { ms: number; workOverSpeedMs: number; gpuWorkOverSpeedMs: number; chainMs: number }
  faults: {
    crashes: number
    recoveries: number
    leaves: number
    joins: number
    partitions: number
    safetyEndsAtMs: number
  }
  /** Offline schedules of the same work with zero latency (independent tasks only). */
  reference: { listMs: number; listRatio: number; lptMs: number; lptRatio: number } | null
  outcome: Outcome
  violations: string[]
  metrics: RunMetrics
  messages: Record<string, { count: number; bytes: number }>
  strategyStats: Record<string, number>
  steps: number
  virtualEndMs: number
  series: { binMs: number; t0Ms: number; utilization: number[] }
  jobs: Array<{
    id: string
    owner: number
    tasks: number
    submitAtMs: number
    finishedAtMs: number | null
    status: string
  }>
  gantt?: Array<[number, number, number, number, number, number]>
  /** For the Gantt chart: each node's label and slot lanes. */
  ganttNodes?: Array<{ key: string; slots: number; speed: number; gpus: number }>
}

export function r3(x: number): number {
  if (!Number.isFinite(x)) return x
  return Math.round(x * 1000) / 1000
}

export function buildRecord(
  built: Built,
  name: StrategyName,
  sim: Sim,
  strategy: Strategy,
  loop: LoopResult,
): RunRecord {
  const { spec, model } = built
  const w = model.work
  const cap = model.mesh.capacity()
  const m = sim.metrics
  let maxCost = 0
  for (let g = 0; g < w.total; g++) if (w.cost[g] > maxCost) maxCost = w.cost[g]
  const messages: Record<string, { count: number; bytes: number }> = {}
  let msgs = 0
  let bytes = 0
  for (let i = 0; i < MSG_NAMES.length; i++) {
    if (m.msgCount[i] === 0) continue
    messages[MSG_NAMES[i]] = { count: m.msgCount[i], bytes: m.msgBytes[i] }
    msgs += m.msgCount[i]
    bytes += m.msgBytes[i]
  }
  return {
    scenario: built.scenario.name,
    strategy: name,
    seed: built.seed,
    nodes: spec.nodes,
    knobs: knobs(spec, built),
    mesh: {
      nodes: model.mesh.initial,
      slots: cap.slots,
      cpuSpeed: r3(cap.cpu),
      gpus: model.mesh.nodes.slice(0, model.mesh.initial).reduce((s, n) => s + n.gpus, 0),
      gpuSpeed: r3(cap.gpu),
      joins: model.mesh.size - model.mesh.initial,
    },
    workload: {
      jobs: w.jobs.length,
      tasks: w.total,
      workMs: r3(w.bound.workMs),
      meanCostMs: r3(w.bound.workMs / Math.max(1, w.total)),
      maxCostMs: r3(maxCost),
    },
    lowerBound: {
      ms: r3(w.bound.ms),
      workOverSpeedMs: r3(w.bound.workOverSpeedMs),
      gpuWorkOverSpeedMs: r3(w.bound.gpuWorkOverSpeedMs),
      chainMs: r3(w.bound.chainMs),
    },
    faults: faultSummary(model.faults),
    reference: reference(built),
    outcome: loop.outcome,
    violations: loop.violations,
    metrics: metrics(sim, loop, msgs, bytes),
    messages,
    strategyStats: strategy.stats(),
    steps: loop.steps,
    virtualEndMs: r3(loop.endAt),
    series: {
      binMs: r3(m.binMs),
      t0Ms: r3(m.t0),
      utilization: m.busyBins.map((b, i) => r3(m.aliveBins[i] > 0 ? b / m.aliveBins[i] : 0)),
    },
    jobs: w.jobs.map((j) => ({
      id: j.id,
      owner: j.owner,
      tasks: j.size,
      submitAtMs: r3(j.submitAt),
      finishedAtMs: Number.isNaN(sim.jobFinishedAt[j.number]) ? null : r3(sim.jobFinishedAt[j.number]),
      status: sim.jobStatus[j.number] || 'open',
    })),
    gantt: m.gantt?.map((g) => [g.node, g.lane, r3(g.start), r3(g.end), g.job, g.ok ? 1 : 0]),
    ganttNodes: m.gantt
      ? model.mesh.nodes.map((n) => ({ key: n.key, slots: n.slots, speed: r3(n.speed), gpus: n.gpus }))
      : undefined,
  }
}

function metrics(sim: Sim, loop: LoopResult, msgs: number, bytes: number): RunMetrics {
  const w = sim.work
  const m = sim.metrics
  const n = w.total
  const lat: number[] = []
  let lost = 0
  let twice = 0
  let extra = 0
  for (let g = 0; g < n; g++) {
    if (m.accepted[g] === 0) lost++
    if (m.starts[g] >= 2) twice++
    if (m.starts[g] > 1) extra += m.starts[g] - 1
    const l = m.doneAt[g] - m.readyAt[g]
    if (Number.isFinite(l)) lat.push(l)
  }
  lat.sort((a, b) => a - b)
  const mean = lat.length > 0 ? lat.reduce((s, x) => s + x, 0) / lat.length : Number.NaN
  const p99 = lat.length > 0 ? lat[Math.min(lat.length - 1, Math.floor(0.99 * lat.length))] : Number.NaN
  const makespan = loop.lastFinishAt - w.firstSubmitAt
  const c = m.msgCount
  const steal = c[MSG.stealRequest] + c[MSG.stealReply]
  const sched = steal + c[MSG.push] + c[MSG.publish] + c[MSG.credit] + c[MSG.deliver]
  const wasted = Math.max(0, m.busySlotMs - sim.acceptedSlotMs)
  return {
    makespanMs: r3(makespan),
    lowerBoundMs: r3(w.bound.ms),
    makespanRatio: r3(makespan / w.bound.ms),
    meanLatencyMs: r3(mean),
    p99LatencyMs: r3(p99),
    utilization: r3(m.aliveSlotMs > 0 ? m.busySlotMs / m.aliveSlotMs : 0),
    usefulUtilization: r3(m.aliveSlotMs > 0 ? sim.acceptedSlotMs / m.aliveSlotMs : 0),
    stealMessagesPerTask: r3(steal / n),
    schedulingMessagesPerTask: r3(sched / n),
    messagesPerTask: r3(msgs / n),
    bytesMoved: bytes,
    bytesPerTask: r3(bytes / n),
    tasksLost: lost,
    tasksFailed: sim.acceptedFailed,
    tasksRunTwice: twice,
    extraRuns: extra,
    wastedSlotMs: r3(wasted),
    wastedWorkShare: r3(m.busySlotMs > 0 ? wasted / m.busySlotMs : 0),
    duplicateResults: m.duplicateResults,
  }
}

function reference(built: Built): RunRecord['reference'] {
  const w = built.model.work
  const r = referenceSchedules(w, built.model.mesh)
  if (r === null) return null
  return {
    listMs: r3(r.listMs),
    listRatio: r3(r.listMs / w.bound.ms),
    lptMs: r3(r.lptMs),
    lptRatio: r3(r.lptMs / w.bound.ms),
  }
}

function faultSummary(f: FaultPlan) {
  const count = (k: string) => f.events.filter((e) => e.kind === k).length
  return {
    crashes: count('crash'),
    recoveries: count('recover'),
    leaves: count('leave'),
    joins: count('join'),
    partitions: count('cut'),
    safetyEndsAtMs: r3(f.safetyEndsAt),
  }
}

let hash: string | undefined

/** A digest of src/scheduler/*.ts: which scheduler a record was made with. */
export function schedulerHash(): string {
  if (hash !== undefined) return hash
  const dir = new URL('../../src/scheduler/', import.meta.url)
  const h = createHash('sha256')
  for (const f of readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .sort())
    h.update(f).update(readFileSync(new URL(f, dir)))
  hash = h.digest('hex').slice(0, 16)
  return hash
}

/** The knobs the seed and scenario produced, as printed at start. */
export function knobs(spec: ScenarioSpec, built: Built): Record<string, unknown> {
  const n = spec.network
  return {
    seeds: built.seeds,
    schedulerHash: schedulerHash(),
    network: {
      kind: n.kind,
      regions: n.regions ?? 1,
      nearMeanMs: r3(meanOf(n.nearMs)),
      farMeanMs: r3(meanOf(n.farMs)),
      jitter: n.jitter,
      uplinkMBps: n.uplinkMBps,
      gossip: n.gossip,
    },
    loss: spec.faults.loss,
    lossDetectMs: spec.faults.lossDetectMs,
    crashes: spec.faults.crashes ?? null,
    partitions: spec.faults.partitions ?? [],
    scheduler: spec.scheduler ?? {},
    brokerServiceMs: spec.broker?.serviceMs ?? 0.02,
    check: spec.check ?? 'sampled',
    stepBudget: spec.stepBudget ?? 200_000_000,
  }
}
