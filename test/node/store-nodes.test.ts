/** A finished job still says how many nodes ran it (gridnode job, jobs --json). */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { JobStore } from '../../src/node/store.ts'
import type { JobSpec, TaskResult } from '../../src/scheduler/types.ts'

const spec: JobSpec = {
  id: 'job-n',
  owner: 'peer-a',
  work: { kind: 'noop' },
  resources: { cpu: 1, gpu: 0, memoryMB: 0 },
  timeoutMs: 0,
  maxAttempts: 3,
  retries: 0,
}

const ran = (index: number, ranOn: string): TaskResult => ({
  job: 'job-n',
  index,
  attempt: 1,
  ranOn,
  outcome: { status: 'ok', value: new Uint8Array([index]), durationMs: 1 },
})

describe('JobStore job records', () => {
  it('count the distinct nodes that ran the stored results', () => {
    const store = new JobStore(join(mkdtempSync(join(tmpdir(), 'gridnode-store-')), 'jobs.db'))
    store.createJob(
      spec,
      'noop x4',
      [0, 1, 2, 3].map((i) => ({ index: i, input: new Uint8Array([i]), deps: [] })),
      1,
    )
    store.saveResults([ran(0, 'b'), ran(1, 'c'), ran(2, 'b'), ran(3, 'a')])
    store.finishJob('job-n', 'done', 2)
    expect(store.job('job-n')?.nodes).toBe(3)
    expect(store.jobs(10)[0].nodes).toBe(3)
    store.close()
  })
})
