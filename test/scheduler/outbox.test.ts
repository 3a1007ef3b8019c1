import { describe, expect, test } from 'vitest'
import { Outbox, type OutboxJob } from '../../src/scheduler/outbox.ts'
import { Random } from '../../src/scheduler/random.ts'
import { Runtime, resolveSettings } from '../../src/scheduler/runtime.ts'
import { capacity, key, ok, result, spec } from './helpers.ts'

function setup() {
  const rt = new Runtime(
    'h',
    resolveSettings({ self: 'h', capacity: capacity(), seed: 1, resultResendMs: 100, maxBatch: 2 }),
    new Random(1),
  )
  rt.begin(0, 'c')
  const settled: OutboxJob[] = []
  const box = new Outbox(rt, (j) => settled.push(j))
  const job: OutboxJob = { spec: spec('j', 'o'), unacked: 0 }
  return { rt, box, job, settled }
}

describe('Outbox', () => {
  test('coalesces per owner, keeps until acked, and reports a settled job', () => {
    const { rt, box, job, settled } = setup()
    box.add(job, result('j', 0, 0, ok()))
    box.add(job, result('j', 1, 0, ok()))
    box.flush()
    expect(rt.out.map((c) => c.type)).toEqual(['send-results'])
    expect(job.unacked).toBe(2)
    expect(box.keys('o')).toEqual([
      { ...key('j', 0), copy: 1 },
      { ...key('j', 1), copy: 1 },
    ])
    box.acked('o', [key('j', 0), key('j', 1, 9)])
    expect(job.unacked).toBe(1)
    box.acked('o', [key('j', 1)])
    expect(settled).toEqual([job])
    expect(box.size).toBe(0)
  })

  test('a newer attempt supersedes an older unacked result; the same attempt is not re-added', () => {
    const { box, job } = setup()
    box.add(job, result('j', 0, 0, ok()))
    box.add(job, result('j', 0, 0, ok()))
    box.add(job, result('j', 0, 2, ok()))
    expect(box.keys('o')).toEqual([{ ...key('j', 0, 2), copy: 1 }])
    expect(job.unacked).toBe(1)
  })

  test('resends after resultResendMs in batches of maxBatch', () => {
    const { rt, box, job } = setup()
    for (let i = 0; i < 3; i++) box.add(job, result('j', i, 0, ok()))
    box.flush()
    expect(box.nextDeadline()).toBe(100)
    rt.begin(100, 'c')
    box.resendDue()
    expect(rt.out.map((c) => (c.type === 'send-results' ? c.results.length : 0))).toEqual([2, 1])
    expect(box.nextDeadline()).toBe(200)
  })
})
