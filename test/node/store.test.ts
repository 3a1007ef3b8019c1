import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { JobStore } from '../../src/node/store.ts'
import type { JobSpec } from '../../src/scheduler/types.ts'

const spec: JobSpec = {
  id: 'job-1',
  owner: 'peer-a',
  work: { kind: 'noop' },
  resources: { cpu: 1, gpu: 0, memoryMB: 0 },
  timeoutMs: 0,
  maxAttempts: 3,
  retries: 0,
}

describe('JobStore', () => {
  it('keeps jobs, tasks and first outcomes across a reopen', () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gridnode-store-')), 'jobs.db')
    const store = new JobStore(path)
    store.createJob(
      spec,
      'noop x3',
      [0, 1, 2].map((i) => ({ index: i, input: new Uint8Array([i]), deps: i === 2 ? [0, 1] : [] })),
      1000,
    )
    store.saveResults([
      {
        job: 'job-1',
        index: 0,
        attempt: 1,
        ranOn: 'b',
        outcome: { status: 'ok', value: new Uint8Array([7]), durationMs: 1.5 },
      },
      {
        job: 'job-1',
        index: 1,
        attempt: 1,
        ranOn: 'c',
        outcome: { status: 'threw', error: 'boom', stack: 'at x', durationMs: 2 },
      },
    ])
    // A duplicate delivery must not overwrite the first outcome.
    store.saveResults([
      {
        job: 'job-1',
        index: 0,
        attempt: 2,
        ranOn: 'd',
        outcome: { status: 'ok', value: new Uint8Array([9]), durationMs: 1 },
      },
    ])
    store.close()

    const again = new JobStore(path)
    const [job] = again.unfinishedJobs()
    expect(job).toMatchObject({
      id: 'job-1',
      name: 'noop x3',
      total: 3,
      status: 'running',
      done: 1,
      failed: 1,
    })
    expect(job.spec).toEqual(spec)
    expect(again.tasks('job-1').map((t) => [t.index, [...t.input], t.deps])).toEqual([
      [0, [0], []],
      [1, [1], []],
      [2, [2], [0, 1]],
    ])
    const results = again.results('job-1')
    expect(results.map((r) => [r.index, r.ok, r.ranOn, r.error])).toEqual([
      [0, true, 'b', null],
      [1, false, 'c', 'boom'],
    ])
    expect([...results[0].value!]).toEqual([7])
    again.finishJob('job-1', 'failed', 2000)
    expect(again.unfinishedJobs()).toEqual([])
    expect(again.job('job-1')).toMatchObject({ status: 'failed', finishedAt: 2000 })
    again.close()
  })
})
