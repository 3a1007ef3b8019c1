/**
 * The safety torture test: message loss, crashes with restarts, graceful
 * leaves, joins, two partitions that heal, and workers that crash now and
 * then, on a small mesh with every invariant checked after every step. Then
 * a fault-free liveness phase must finish every job, each task once.
 */
import { defineScenario } from '../scenario.ts'
import { cpuJob, HETEROGENEOUS, regions } from './common.ts'

export const scenario = defineScenario({
  name: 'faults',
  description: 'loss, crashes and restarts, leaves, joins, partitions, worker crashes; full checks',
  defaultNodes: 40,
  build: ({ nodes }) => ({
    nodes,
    nodeClasses: HETEROGENEOUS,
    network: regions(),
    faults: {
      loss: 0.02,
      lossDetectMs: 300,
      crashes: {
        fraction: 0.2,
        windowLb: [0.05, 0.8],
        detectMs: { kind: 'uniform', min: 8, max: 3000 },
        recoverAfterMs: { kind: 'uniform', min: 100, max: 3000 },
      },
      leaves: { fraction: 0.05, windowLb: [0.1, 0.7] },
      joins: { count: Math.max(1, Math.round(nodes / 10)), windowLb: [0.1, 0.6] },
      partitions: [
        { atLb: 0.3, healAfterMs: 1500, fraction: 0.3, detectMs: 2000 },
        { atLb: 0.7, healAfterMs: 4000, fraction: 0.2, detectMs: 1000 },
      ],
      untilLb: 1.2,
    },
    jobs: [
      cpuJob(
        'a',
        nodes * 40,
        { kind: 'pareto', alpha: 1.5, min: 50, max: 2000 },
        { crashRate: 0.005, maxAttempts: 4 },
      ),
      cpuJob(
        'b',
        nodes * 10,
        { kind: 'uniform', min: 50, max: 300 },
        {
          owner: 1,
          submitAtMs: { kind: 'fixed', value: 2000 },
          graph: { kind: 'random', p: 0.2, maxDeps: 2 },
        },
      ),
    ],
    check: 'full',
    livenessLb: 40,
  }),
})
