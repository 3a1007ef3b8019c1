/**
 * Task graphs with dependencies: a layered job (8 layers, each task needs 3
 * tasks of the layer before, results of 4 KiB travel as dependency values)
 * and a random DAG job, from two owners.
 */
import { defineScenario } from '../scenario.ts'
import { cpuJob, HETEROGENEOUS, regions } from './common.ts'

export const scenario = defineScenario({
  name: 'dag',
  description: 'a layered task graph (8 layers, fan-in 3) and a random DAG, two owners',
  defaultNodes: 100,
  build: ({ nodes }) => ({
    nodes,
    nodeClasses: HETEROGENEOUS,
    network: regions(),
    faults: { loss: 0, lossDetectMs: 1000 },
    jobs: [
      cpuJob(
        'layers',
        nodes * 80,
        { kind: 'lognormal', median: 200, sigma: 0.6, min: 20, max: 3000 },
        {
          graph: { kind: 'layers', layers: 8, fanIn: 3 },
          resultBytes: 4096,
        },
      ),
      cpuJob(
        'random',
        nodes * 20,
        { kind: 'uniform', min: 50, max: 500 },
        {
          owner: 1,
          graph: { kind: 'random', p: 0.3, maxDeps: 3 },
        },
      ),
    ],
  }),
})
