/** Small scenario builders and a runner for the simulator's tests. */
import { buildModel, runStrategy } from '../../simulations/core/runner.ts'
import type { StrategyName } from '../../simulations/core/sim.ts'
import type { Scenario, ScenarioSpec } from '../../simulations/scenario.ts'

export function withSpec(base: Scenario, patch: (s: ScenarioSpec) => ScenarioSpec): Scenario {
  return { ...base, build: (p) => patch(base.build(p)) }
}

export function run(scenario: Scenario, strategy: StrategyName, seed: number, nodes?: number) {
  return runStrategy(buildModel(scenario, seed, nodes), strategy)
}
