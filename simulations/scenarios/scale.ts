/**
 * The scale study's scenario: a heterogeneous mesh (laptops to 32-slot
 * servers, speeds 0.4-1.6) across three regions, one owner submitting a job
 * of heavy-tailed tasks (Pareto 1.5, 100 ms to 5 s), sized at `tasksPerSlot`
 * tasks per CPU slot so the work per node stays the same from 10 to 10,000
 * nodes (weak scaling). Gossip: all-to-all up to 1,000 nodes, beyond that a
 * 32-peer neighbourhood with the owner's adverts reaching every node
 * (override with --gossip).
 */
import { defineScenario } from '../scenario.ts'
import { cpuJob, gossipFor, HEAVY_TAILED, HETEROGENEOUS, regions } from './common.ts'

/** Mean CPU slots per node in HETEROGENEOUS (by weight). */
export const MEAN_SLOTS = 0.3 * 3 + 0.4 * 6 + 0.25 * 24 + 0.05 * 8
export const TASKS_PER_SLOT = 24

export const scenario = defineScenario({
  name: 'scale',
  description: 'heterogeneous mesh in 3 regions, one job of heavy-tailed tasks, 24 tasks per slot',
  defaultNodes: 1000,
  build: ({ nodes }) => ({
    nodes,
    nodeClasses: HETEROGENEOUS,
    network: regions(gossipFor(nodes)),
    faults: { loss: 0, lossDetectMs: 1000 },
    jobs: [cpuJob('heavy', Math.round(nodes * MEAN_SLOTS * TASKS_PER_SLOT), HEAVY_TAILED)],
    check: 'sampled',
    checkIntervalMs: 2000,
    gantt: nodes <= 20,
  }),
})
