/**
 * The skewed-sleeps benchmark (`npm run bench -- skewed`, PEERS.md workload c) in the
 * simulator: 2 nodes x 2 slots on a loopback-like LAN, the bench's 400 sleeps in its order
 * (`bench/jobs.ts`, `skewedDurations`: Pareto 1.5, mean ~20 ms, capped at 1,000 ms, the
 * 1,000 ms task at 90% of the list), submitted on the last node as the bench does. A perfect
 * first-come list scheduler gets 1.298 of the lower bound on this order; --nodes adds nodes of
 * the same kind (the list stays the same).
 */
import { skewedDurations } from '../../bench/jobs.ts'
import { defineScenario } from '../scenario.ts'
import { cpuJob, LOOPBACK_NODES, loopback } from './common.ts'

export const scenario = defineScenario({
  name: 'skewed',
  description: "the skewed-sleeps bench: 2 x 2 slots, the bench's 400 Pareto sleeps in its order",
  defaultNodes: 2,
  build: ({ nodes }) => {
    const costs = skewedDurations()
    return {
      nodes,
      nodeClasses: LOOPBACK_NODES,
      network: loopback(),
      faults: { loss: 0, lossDetectMs: 500 },
      jobs: [
        cpuJob(
          'sleeps',
          costs.length,
          { kind: 'fixed', value: 0 },
          {
            owner: nodes - 1,
            costsMs: costs,
            submitAtMs: { kind: 'fixed', value: 500 },
          },
        ),
      ],
      check: 'full',
      gantt: true,
    }
  },
})
