import { describe, expect, test } from 'vitest'
import { buildJob, invalidTasks, progressOf } from '../../src/scheduler/job-table.ts'
import { inputs, spec } from './helpers.ts'

describe('job table', () => {
  test('wires dependents, one entry per mention', () => {
    const job = buildJob(spec('j', 'a'), inputs(3, { 1: [0, 0], 2: [0] }))
    const t0 = job.tasks.get(0)
    expect(t0?.dependents.map((d) => d.index)).toEqual([1, 1, 2])
    expect(t0?.dependentsLeft).toBe(3)
    expect(job.tasks.get(1)?.depsLeft).toBe(2)
    expect(job.counts.waiting).toBe(3)
  })

  test('ignores a repeated index', () => {
    const job = buildJob(spec('j', 'a'), [...inputs(2), ...inputs(1)])
    expect(job.tasks.size).toBe(2)
  })

  test('finds missing dependencies and everything on or behind a cycle', () => {
    const job = buildJob(spec('j', 'a'), inputs(6, { 0: [7], 1: [0], 2: [3], 3: [2], 4: [3], 5: [1] }))
    const bad = new Map([...invalidTasks(job)].map(([t, why]) => [t.index, why]))
    expect(bad).toEqual(
      new Map([
        [0, 'dependency 7 does not exist'],
        [2, 'dependency cycle'],
        [3, 'dependency cycle'],
        [4, 'dependency cycle'],
      ]),
    )
  })

  test('progress counts', () => {
    const job = buildJob(spec('j', 'a'), inputs(2))
    expect(progressOf(job, 1)).toEqual({ job: 'j', total: 2, done: 0, failed: 0, running: 1, nodes: 0 })
  })
})
