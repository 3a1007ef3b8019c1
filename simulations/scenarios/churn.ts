/**
 * Churn: the scale scenario with 10% of the nodes killed (kill -9) while
 * the job runs (between 20% and 60% of the lower bound); peers see each
 * connection drop 8-17 ms later, as measured on loopback. The dead stay
 * dead. Compare with `scale` on the same seed for the cost of churn.
 */
import { defineScenario } from '../scenario.ts'
import { scenario as scale } from './scale.ts'

export const scenario = defineScenario({
  name: 'churn',
  description: 'scale, with 10% of the nodes crashing during the job (they stay down)',
  defaultNodes: 1000,
  build: (p) => {
    const s = scale.build(p)
    return {
      ...s,
      faults: {
        ...s.faults,
        crashes: {
          fraction: 0.1,
          windowLb: [0.2, 0.6],
          detectMs: { kind: 'uniform', min: 8, max: 17 },
          recoverForLiveness: false,
        },
      },
    }
  },
})
