/**
 * Two nodes with one slot each, four 100 ms tasks submitted at t = 10 ms on
 * n0, links of exactly 1 ms each way, no jitter, unlimited bandwidth, no
 * faults: small enough to work out every strategy's makespan by hand (see
 * test/simulations/makespan.test.ts).
 */
import { defineScenario } from '../scenario.ts'

export const scenario = defineScenario({
  name: 'tiny',
  description: '2 nodes x 1 slot, 4 tasks of 100 ms, 1 ms links: makespans worked out by hand',
  defaultNodes: 2,
  build: ({ nodes }) => ({
    nodes,
    nodeClasses: [
      {
        weight: 1,
        slots: { kind: 'fixed', value: 1 },
        speed: { kind: 'fixed', value: 1 },
        memoryMB: 1024,
        gpus: 0,
      },
    ],
    network: {
      kind: 'lan',
      nearMs: { kind: 'fixed', value: 1 },
      farMs: { kind: 'fixed', value: 1 },
      jitter: 0,
      uplinkMBps: 0,
      gossip: { mode: 'all' },
    },
    faults: { loss: 0, lossDetectMs: 500 },
    jobs: [
      {
        name: 'four',
        count: 1,
        owner: 0,
        submitAtMs: { kind: 'fixed', value: 10 },
        tasks: 4,
        costMs: { kind: 'fixed', value: 100 },
        resources: { cpu: 1, gpu: 0, memoryMB: 0 },
        inputBytes: 16,
        resultBytes: 16,
        maxAttempts: 3,
        retries: 0,
      },
    ],
    // The scheduler's defaults, pinned so the hand computation does not move with them.
    scheduler: { prefetchFactor: 2, targetBufferMs: 20, advertMinIntervalMs: 100, advertIntervalMs: 1000 },
    broker: { serviceMs: 0 },
    check: 'full',
    gantt: true,
  }),
})
