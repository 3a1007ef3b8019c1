/**
 * An owner dies (kill -9) twice while its job runs and restarts from its
 * store (job-restored): holders keep running its tasks, lease them back to
 * the restarted owner and resend their results. Ours only: the baselines
 * keep no owner state to restart from.
 */
import { defineScenario } from '../scenario.ts'
import { cpuJob, HETEROGENEOUS, regions } from './common.ts'

export const scenario = defineScenario({
  name: 'owner-crash',
  description: 'owners crash and restart from their stores mid-job (gridnode only)',
  defaultNodes: 30,
  strategies: ['gridnode'],
  build: ({ nodes }) => ({
    nodes,
    nodeClasses: HETEROGENEOUS,
    network: regions(),
    faults: {
      loss: 0.01,
      lossDetectMs: 300,
      crashes: {
        fraction: 0.3,
        windowLb: [0.1, 0.7],
        detectMs: { kind: 'uniform', min: 8, max: 17 },
        recoverAfterMs: { kind: 'uniform', min: 200, max: 2000 },
        includeOwners: true,
      },
    },
    jobs: [
      cpuJob('mine', nodes * 60, { kind: 'pareto', alpha: 1.5, min: 50, max: 2000 }, { owner: 1 }),
      cpuJob('theirs', nodes * 30, { kind: 'uniform', min: 50, max: 300 }, { owner: 2 }),
    ],
    check: 'full',
  }),
})
