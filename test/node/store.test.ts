import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { describe, expect, it } from 'vitest'
import { JobExistsError, JobStore } from '../../src/node/store.ts'
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

  it("is the daemon's alone while open (locks taken once), and readable by others once closed", () => {
    const path = join(mkdtempSync(join(tmpdir(), 'gridnode-store-')), 'jobs.db')
    const store = new JobStore(path)
    store.createJob(spec, 'noop', [{ index: 0, input: new Uint8Array([1]), deps: [] }], 1000)
    const other = new DatabaseSync(path, { timeout: 0 })
    expect(() => other.prepare('SELECT count(*) AS n FROM jobs').get()).toThrow(/locked/)
    other.close()
    store.close()
    const after = new DatabaseSync(path)
    expect(after.prepare('SELECT count(*) AS n FROM jobs').get()).toEqual({ n: 1 })
    after.close()
  })

  it('writes batches larger than one statement (64 rows) whole, in order, first outcome kept', () => {
    const store = new JobStore(join(mkdtempSync(join(tmpdir(), 'gridnode-store-')), 'jobs.db'))
    const n = 64 * 3 + 7
    store.createJob(
      { ...spec, id: 'big' },
      'big',
      Array.from({ length: n }, (_, i) => ({
        index: i,
        input: new Uint8Array([i & 255, i >> 8]),
        deps: i > 0 ? [i - 1] : [],
      })),
      1,
    )
    expect(store.job('big')).toMatchObject({ total: n, status: 'running' })
    expect(() => store.createJob({ ...spec, id: 'big' }, 'again', [], 2)).toThrow(JobExistsError)
    expect(store.tasks('big')).toHaveLength(n)
    const tasks = store.tasks('big')
    expect(tasks.map((t) => t.index)).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(tasks[130]).toEqual({ index: 130, input: new Uint8Array([130, 0]), deps: [129] })
    expect(tasks[n - 1].input).toEqual(new Uint8Array([(n - 1) & 255, (n - 1) >> 8]))
    const result = (index: number, v: number) => ({
      job: 'big',
      index,
      attempt: 1,
      ranOn: `node-${v}`,
      outcome: { status: 'ok' as const, value: new Uint8Array([v]), durationMs: index / 2 },
    })
    // Task 3 twice in one batch (both inside the first 64-row statement), task 100 twice across
    // statements, then every task again in a later batch: the first outcome of each stays.
    const batch = [
      result(3, 1),
      result(3, 2),
      ...Array.from({ length: n }, (_, i) => result(i, 3)),
      result(100, 4),
    ]
    store.saveBatch(batch, [{ id: 'big', status: 'done', at: 2 }])
    store.saveResults(Array.from({ length: n }, (_, i) => result(i, 5)))
    const stored = store.results('big')
    expect(stored).toHaveLength(n)
    expect(stored[3]).toMatchObject({
      index: 3,
      ranOn: 'node-1',
      value: new Uint8Array([1]),
      durationMs: 1.5,
    })
    expect(stored[100]).toMatchObject({ index: 100, ranOn: 'node-3', durationMs: 50 })
    expect(stored.every((r, i) => r.index === i && r.ok && (i === 3 || r.ranOn === 'node-3'))).toBe(true)
    expect(store.job('big')).toMatchObject({ status: 'done', done: n, failed: 0, nodes: 2 })
    store.close()
  })

  it('a duplicate task index fails the whole job, leaving nothing stored', () => {
    const store = new JobStore(join(mkdtempSync(join(tmpdir(), 'gridnode-store-')), 'jobs.db'))
    const tasks = Array.from({ length: 70 }, (_, i) => ({
      index: i === 69 ? 5 : i,
      input: new Uint8Array(),
      deps: [],
    }))
    expect(() => store.createJob({ ...spec, id: 'dup' }, 'dup', tasks, 1)).toThrow(/UNIQUE/)
    expect(store.job('dup')).toBeUndefined()
    expect(store.tasks('dup')).toEqual([])
    store.close()
  })
})
