/** Sanity: identical 4-slot nodes on one LAN, uniform 200-400 ms tasks, 50 per slot. */
import { defineScenario } from '../scenario.ts'
import { cpuJob, lan, UNIFORM_COST, UNIFORM_NODES } from './common.ts'

export const scenario = defineScenario({
  name: 'uniform',
  description: 'identical nodes on a LAN, uniform task sizes',
  defaultNodes: 50,
  build: ({ nodes }) => ({
    nodes,
    nodeClasses: UNIFORM_NODES,
    network: lan(),
    faults: { loss: 0, lossDetectMs: 500 },
    jobs: [cpuJob('uniform', nodes * 4 * 50, UNIFORM_COST)],
    gantt: nodes <= 12,
  }),
})
