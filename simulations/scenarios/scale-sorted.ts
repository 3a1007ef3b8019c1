/**
 * `scale` with each job's tasks submitted largest first: what the scheduler
 * would do if it ordered its queues by the cost hints it already carries
 * (finding 1 in simulations/README.md).
 */
import { defineScenario } from '../scenario.ts'
import { scenario as scale } from './scale.ts'

export const scenario = defineScenario({
  name: 'scale-sorted',
  description: 'scale, with tasks in largest-first order (what ordering queues by cost hints would do)',
  defaultNodes: 300,
  build: (p) => {
    const s = scale.build(p)
    return { ...s, jobs: s.jobs.map((j) => ({ ...j, order: 'largest-first' as const })) }
  },
})
