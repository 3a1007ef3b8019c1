import { describe, expect, test } from 'vitest'
import { Custody } from '../../src/scheduler/custody.ts'
import { buildJob } from '../../src/scheduler/job-table.ts'
import { Random } from '../../src/scheduler/random.ts'
import { Runtime, resolveSettings } from '../../src/scheduler/runtime.ts'
import { capacity, inputs, spec } from './helpers.ts'

function setup() {
  const rt = new Runtime(
    'a',
    resolveSettings({ self: 'a', capacity: capacity(), seed: 1, leaseTimeoutMs: 100, restoreGraceMs: 50 }),
    new Random(1),
  )
  rt.begin(0, 'c')
  const c = new Custody(rt)
  const job = buildJob(spec('j', 'a'), inputs(3))
  return { rt, c, job, t: (i: number) => job.tasks.get(i) ?? (undefined as never) }
}

describe('Custody', () => {
  test('counts, holder index and remote order follow setState', () => {
    const { c, job, t } = setup()
    // A task reaches remote custody from the owner's queue (waiting → remote is not a legal move).
    c.setState(t(0), 'local')
    c.setState(t(1), 'local')
    c.setState(t(0), 'remote', 'b')
    c.setState(t(1), 'remote', 'b')
    c.setState(t(2), 'local')
    expect(job.counts).toMatchObject({ waiting: 0, remote: 2, local: 1 })
    expect(c.heldBy('b').map((x) => x.index)).toEqual([0, 1])
    c.setState(t(0), 'remote', 'c')
    expect(c.heldBy('b').map((x) => x.index)).toEqual([1])
    expect([...job.remoteHeld.keys()]).toEqual([1, 0])
    expect(c.dirty.has(job)).toBe(true)
  })

  test('lease deadlines expire unless refreshed; grace deadlines for in-doubt tasks', () => {
    const { rt, c, t } = setup()
    c.setState(t(0), 'local')
    c.setState(t(1), 'local')
    c.setState(t(0), 'remote', 'b')
    c.setState(t(1), 'remote', 'b')
    c.setState(t(2), 'doubt')
    expect(c.nextDeadline()).toBe(50)
    rt.begin(60, 'c')
    c.refresh(t(1))
    expect(c.expired()).toEqual({ leases: [], graces: [t(2)] })
    expect(c.nextDeadline()).toBe(100)
    rt.begin(100, 'c')
    expect(c.expired().leases).toEqual([t(0)])
    expect(c.nextDeadline()).toBe(160)
    c.setState(t(1), 'done')
    expect(c.nextDeadline()).toBeUndefined()
  })
})
