/** Every scenario `npm run sim -- <name>` knows, by name. */
import type { Scenario } from '../scenario.ts'
import { scenario as churn } from './churn.ts'
import { scenario as dag } from './dag.ts'
import { scenario as faults } from './faults.ts'
import { scenario as gpuMix } from './gpu-mix.ts'
import { scenario as liveShape } from './live-shape.ts'
import { scenario as multiOwner } from './multi-owner.ts'
import { scenario as ownerCrash } from './owner-crash.ts'
import { scenario as scale } from './scale.ts'
import { scenario as scaleSorted } from './scale-sorted.ts'
import { scenario as skewed } from './skewed.ts'
import { scenario as tiny } from './tiny.ts'
import { scenario as uniform } from './uniform.ts'

export const SCENARIOS: Record<string, Scenario> = Object.fromEntries(
  [
    tiny,
    skewed,
    uniform,
    scale,
    scaleSorted,
    churn,
    gpuMix,
    multiOwner,
    dag,
    faults,
    ownerCrash,
    liveShape,
  ].map((s) => [s.name, s]),
)
