/**
 * The live harness's run (simulations/live/run.ts) in the simulator: 4 nodes
 * with 2 slots on one loopback-like LAN, 800 heavy-tailed sleeps (Pareto
 * 1.5, 20 ms to 1 s) submitted on n0, one node killed at 30% of the lower
 * bound and restarted at 60%, a fifth node joining at 40%. Compare with
 * `npm run sim -- live --nodes 4 --tasks 800`.
 */
import { defineScenario } from '../scenario.ts'
import { cpuJob, LOOPBACK_NODES, loopback } from './common.ts'

export const scenario = defineScenario({
  name: 'live-shape',
  description: 'the live harness run (4 x 2 slots, 800 sleeps, a kill, a restart, a join), simulated',
  defaultNodes: 4,
  build: ({ nodes }) => ({
    nodes,
    nodeClasses: LOOPBACK_NODES,
    network: loopback(),
    faults: {
      loss: 0,
      lossDetectMs: 500,
      crashes: {
        fraction: 1 / nodes,
        windowLb: [0.3, 0.3],
        detectMs: { kind: 'uniform', min: 8, max: 17 },
        recoverAfterMs: { kind: 'fixed', value: 1500 },
      },
      joins: { count: 1, windowLb: [0.4, 0.4], nodeClass: 0 },
    },
    jobs: [
      cpuJob(
        'sleeps',
        200 * nodes,
        { kind: 'pareto', alpha: 1.5, min: 20, max: 1000 },
        { submitAtMs: { kind: 'fixed', value: 500 } },
      ),
    ],
    check: 'full',
    gantt: true,
  }),
})
