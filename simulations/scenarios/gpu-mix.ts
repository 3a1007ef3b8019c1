/**
 * GPU-only tasks mixed with CPU tasks: a fifth of the nodes have 1-4 GPUs;
 * one owner submits a CPU job, another a job whose tasks each need a GPU.
 * GPU tasks may only run where a GPU is free.
 */
import { defineScenario } from '../scenario.ts'
import { cpuJob, HEAVY_TAILED, HETEROGENEOUS, regions } from './common.ts'

export const scenario = defineScenario({
  name: 'gpu-mix',
  description: 'a CPU job and a GPU-only job side by side on a mesh where 20% of nodes have GPUs',
  defaultNodes: 200,
  build: ({ nodes }) => ({
    nodes,
    nodeClasses: [
      ...HETEROGENEOUS.slice(0, 3),
      {
        weight: 20,
        slots: { kind: 'choice', values: [8, 16] },
        speed: { kind: 'lognormal', median: 1, sigma: 0.15, min: 0.6, max: 1.5 },
        memoryMB: 65536,
        gpus: 2,
        gpuSpeed: { kind: 'lognormal', median: 1, sigma: 0.3, min: 0.4, max: 2 },
      },
    ],
    network: regions(),
    faults: { loss: 0, lossDetectMs: 1000 },
    jobs: [
      cpuJob('cpu', nodes * 100, HEAVY_TAILED),
      cpuJob(
        'gpu',
        nodes * 4,
        { kind: 'lognormal', median: 800, sigma: 0.5, min: 100, max: 8000 },
        {
          owner: 1,
          resources: { cpu: 1, gpu: 1, memoryMB: 2048 },
        },
      ),
    ],
  }),
})
