/** Counts in the CLI's sentences: singular and plural right, "so far" only while a job runs. */
import { describe, expect, it } from 'vitest'
import { startBanner } from '../../cli/commands/start.ts'
import { describeJob } from '../../cli/job-view.ts'
import type { JobSummary } from '../../src/client/grid.ts'

function job(over: Partial<JobSummary>): JobSummary {
  return {
    id: 'job-1',
    name: 'square',
    status: 'done',
    total: 3,
    done: 3,
    failed: 0,
    running: 0,
    nodes: 1,
    createdAt: 0,
    finishedAt: 1500,
    blocked: '',
    work: 'square of work.mjs',
    kind: 'function',
    resources: { cpu: 1, gpu: 0, memoryMB: 0 },
    ...over,
  } as JobSummary
}

const tasksLine = (j: JobSummary) =>
  describeJob(j)
    .split('\n')
    .find((l) => l.startsWith('tasks'))

describe('gridnode job', () => {
  it('says "1 node" and no "so far" once the job has ended', () => {
    expect(tasksLine(job({ nodes: 1 }))).toBe('tasks      3/3 done (results from 1 node)')
    expect(tasksLine(job({ nodes: 2, status: 'failed', done: 2, failed: 1 }))).toBe(
      'tasks      2/3 done, 1 failed (results from 2 nodes)',
    )
  })

  it('says "so far" while the job runs', () => {
    const running = job({ status: 'running', done: 1, running: 2, finishedAt: null })
    expect(tasksLine(running)).toBe('tasks      1/3 done, 2 running (results from 1 node so far)')
    expect(tasksLine({ ...running, nodes: 3 })).toBe(
      'tasks      1/3 done, 2 running (results from 3 nodes so far)',
    )
  })
})

describe('the start banner', () => {
  it('says "1 slot" and "1 GPU", "2 slots" and "0 GPUs"', () => {
    expect(startBanner({ peerId: 'P', mesh: 'm', slots: 1, gpus: 1 })).toBe(
      'gridnode node P is up (mesh "m", 1 slot, 1 GPU)',
    )
    expect(startBanner({ peerId: 'P', mesh: 'm', slots: 2, gpus: 0 })).toBe(
      'gridnode node P is up (mesh "m", 2 slots, 0 GPUs)',
    )
  })
})
