/**
 * Many concurrent jobs from different owners: 20 owners spread over the
 * mesh each submit a job (sizes 200-3,000 tasks, uniform or heavy-tailed)
 * at times spread over the first 5 s. Fairness: no job may starve.
 */
import { defineScenario } from '../scenario.ts'
import { cpuJob, HEAVY_TAILED, HETEROGENEOUS, regions, UNIFORM_COST } from './common.ts'

export const scenario = defineScenario({
  name: 'multi-owner',
  description: '20 jobs from 20 owners, submitted over 5 s, on a heterogeneous mesh',
  defaultNodes: 200,
  build: ({ nodes }) => ({
    nodes,
    nodeClasses: HETEROGENEOUS,
    network: regions(),
    faults: { loss: 0, lossDetectMs: 1000 },
    jobs: [
      cpuJob('heavy', Math.round(nodes * 10), HEAVY_TAILED, {
        count: 10,
        owner: 'spread',
        submitAtMs: { kind: 'uniform', min: 1000, max: 6000 },
      }),
      cpuJob('even', Math.round(nodes * 5), UNIFORM_COST, {
        count: 10,
        owner: 'spread',
        submitAtMs: { kind: 'uniform', min: 1000, max: 6000 },
      }),
    ],
  }),
})
