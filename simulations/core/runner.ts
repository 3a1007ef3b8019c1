/**
 * One seed, everything derived from it: the mesh, the workload, the fault
 * plan, link latencies and the loop's own stream, drawn in that order from
 * one master generator. Every strategy of a comparison runs on the same
 * model with the same loop seed. The record a run returns depends on the
 * seed only (wall-clock figures are kept apart in `perf`).
 */

import { planFaults } from '../model/faults.ts'
import { Mesh } from '../model/mesh.ts'
import { Workload } from '../model/workload.ts'
import type { Scenario, ScenarioSpec } from '../scenario.ts'
import { CentralStrategy } from '../strategies/central.ts'
import { GridnodeStrategy } from '../strategies/gridnode.ts'
import { RandomPushStrategy } from '../strategies/random-push.ts'
import { buildRecord, type RunRecord } from './record.ts'
import { Rng } from './rng.ts'
import { type Model, type Progress, Sim, type Strategy, type StrategyName } from './sim.ts'

export interface Seeds {
  mesh: number
  work: number
  faults: number
  net: number
  loop: number
}

export function deriveSeeds(seed: number): Seeds {
  const r = new Rng(seed)
  return { mesh: r.seed(), work: r.seed(), faults: r.seed(), net: r.seed(), loop: r.seed() }
}

export interface Built {
  scenario: Scenario
  spec: ScenarioSpec
  model: Model
  seed: number
  seeds: Seeds
}

export function buildModel(scenario: Scenario, seed: number, nodes?: number): Built {
  const spec = scenario.build({ nodes: nodes ?? scenario.defaultNodes, seed })
  const seeds = deriveSeeds(seed)
  const mesh = new Mesh(spec, seeds.mesh)
  const work = new Workload(spec, mesh, seeds.work)
  // Node 0 (the central baseline's broker) and the owners never fail, in every strategy.
  const spared = new Set<number>([0, ...work.jobs.map((j) => j.owner)])
  const faults = planFaults(spec.faults, mesh, spared, work.firstSubmitAt, work.bound.ms, seeds.faults)
  return { scenario, spec, seed, seeds, model: { spec, mesh, work, faults, netSeed: seeds.net } }
}

export function makeStrategy(name: StrategyName, sim: Sim): Strategy {
  switch (name) {
    case 'gridnode':
      return new GridnodeStrategy(sim)
    case 'central':
      return new CentralStrategy(sim)
    case 'random-push':
      return new RandomPushStrategy(sim)
  }
}

export interface Perf {
  wallMs: number
  steps: number
  eventsPerSec: number
}

export function runStrategy(
  built: Built,
  name: StrategyName,
  progress?: (p: Progress) => void,
): { record: RunRecord; perf: Perf; sim: Sim; strategy: Strategy } {
  const sim = new Sim(built.model, built.seeds.loop)
  const strategy = makeStrategy(name, sim)
  sim.attach(strategy, progress)
  const loop = sim.run()
  const record = buildRecord(built, name, sim, strategy, loop)
  const perf = {
    wallMs: loop.wallMs,
    steps: loop.steps,
    eventsPerSec: loop.steps / Math.max(1e-9, loop.wallMs / 1000),
  }
  return { record, perf, sim, strategy }
}
