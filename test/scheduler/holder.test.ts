import { describe, expect, test } from 'vitest'
import type { Batch } from '../../src/scheduler/index.ts'
import { PIPELINE_TASK_MS } from '../../src/scheduler/resources.ts'
import { advert, capacity, desc, finish, key, Node, ok, pick, ready, runs, spec, types } from './helpers.ts'

/** Holder 'h' receives a push of n tasks of job 'j' owned by 'o'. */
function holder(n: number, over: { slots?: number; gpus?: number; memoryMB?: number; jobGpu?: number } = {}) {
  const node = new Node({
    self: 'h',
    capacity: capacity(over.slots ?? 1, over.memoryMB ?? 4096, over.gpus ?? 0),
  })
  const job = spec('j', 'o', { resources: { cpu: 1, gpu: over.jobGpu ?? 0, memoryMB: 100 } })
  const batch: Batch = { jobs: [job], tasks: Array.from({ length: n }, (_, i) => desc('j', i)) }
  const cmds = node.feed({ type: 'batch-pushed', from: 'o', batch })
  return { node, cmds, job }
}

describe('custody of pushed and stolen batches', () => {
  test('a pushed batch is queued, leased to its owner at once, and started', () => {
    const { node, cmds } = holder(3)
    expect(types(cmds)).toEqual(['send-lease', 'run-task'])
    expect(pick(cmds, 'send-lease')[0]).toMatchObject({
      to: 'o',
      holdings: [
        { ...key('j', 0), copy: 1 },
        { ...key('j', 1), copy: 1 },
        { ...key('j', 2), copy: 1 },
      ],
    })
    expect(node.s.advert()).toMatchObject({ freeSlots: 0, running: 1, ready: ready(2) })
  })

  test('leases go out every leaseIntervalMs and list queued, running and unacked tasks', () => {
    const { node, cmds } = holder(2)
    finish(node, pick(cmds, 'run-task')[0], ok(), 500)
    const later = node.runUntil(1000)
    const leases = pick(later, 'send-lease')
    expect(leases).toHaveLength(1)
    expect(leases[0].holdings).toEqual([
      { ...key('j', 1), copy: 1 },
      { ...key('j', 0), copy: 1 },
    ])
  })

  test('a duplicated batch does not duplicate tasks', () => {
    const { node, job } = holder(2)
    const again = node.feed({
      type: 'batch-pushed',
      from: 'o',
      batch: { jobs: [job], tasks: [desc('j', 0), desc('j', 1)] },
    })
    expect(runs(again)).toEqual([])
    expect(node.s.advert().ready).toEqual(ready(1))
  })

  test('a newer attempt replaces a queued one and is named by leases for a running one', () => {
    const { node, job } = holder(2)
    node.feed({
      type: 'batch-pushed',
      from: 'o',
      batch: { jobs: [job], tasks: [desc('j', 0, 4), desc('j', 1, 2)] },
    })
    const lease = pick(node.runUntil(1000), 'send-lease')[0]
    expect(lease.holdings).toEqual([
      { ...key('j', 0, 4), copy: 1 },
      { ...key('j', 1, 2), copy: 1 },
    ])
    const fin = node.feed({ type: 'task-finished', task: key('j', 0, 0), outcome: ok() })
    expect(pick(fin, 'send-results')[0].results[0]).toMatchObject({ index: 0, attempt: 4 })
    expect(runs(fin)).toEqual(['j/1@2'])
  })
})

describe('resources', () => {
  test('GPUs are assigned by index, never shared; tasks wait for a free one', () => {
    const { cmds } = holder(3, { slots: 4, gpus: 2, jobGpu: 1 })
    expect(pick(cmds, 'run-task').map((c) => c.gpus)).toEqual([[0], [1]])
  })

  test('memory is strict', () => {
    const node = new Node({ self: 'h', capacity: capacity(4, 250) })
    const job = spec('j', 'o', { resources: { cpu: 1, gpu: 0, memoryMB: 100 } })
    const cmds = node.feed({
      type: 'batch-pushed',
      from: 'o',
      batch: { jobs: [job], tasks: [0, 1, 2].map((i) => desc('j', i)) },
    })
    expect(runs(cmds)).toEqual(['j/0@0', 'j/1@0'])
  })

  test('tiny tasks are started up to slots × (2 ms / mean task time) at once', () => {
    const { node, cmds } = holder(40, { slots: 2 })
    expect(runs(cmds)).toHaveLength(2)
    // A 0.5 ms task: four per slot keep 2 ms of work with the executor.
    const tiny = finish(node, pick(cmds, 'run-task')[0], ok('v', 0.5))
    expect(runs(tiny)).toHaveLength(7)
    expect(node.s.advert()).toMatchObject({ freeSlots: 0, running: 8, meanTaskMs: 0.5 })
  })

  test('short tasks (2-50 ms) are started two per slot, so the executor has the next one at hand', () => {
    const { node, cmds } = holder(40, { slots: 2 })
    expect(runs(cmds)).toHaveLength(2)
    const short = finish(node, pick(cmds, 'run-task')[0], ok('v', 3))
    expect(runs(short)).toHaveLength(3)
    expect(node.s.advert()).toMatchObject({ freeSlots: 0, running: 4, meanTaskMs: 3 })
  })

  test('tasks of 6-50 ms go two per slot only while no peer is idle: one waiting at a worker is out of its reach', () => {
    const { node, cmds } = holder(40, { slots: 2 })
    expect(runs(cmds)).toHaveLength(2)
    node.feed({ type: 'advert-received', peer: 'p', advert: advert({ ready: ready(5) }), rttMs: 1 })
    const busyMesh = finish(node, pick(cmds, 'run-task')[0], ok('v', 20))
    expect(runs(busyMesh)).toHaveLength(3)
    expect(node.s.advert()).toMatchObject({ running: 4 })
    // p has a free slot and nothing ready: the next task waits here, where p can steal it.
    node.feed({ type: 'advert-received', peer: 'p', advert: advert(), rttMs: 1 })
    const idlePeer = finish(node, pick(busyMesh, 'run-task')[0], ok('v', 20))
    expect(runs(idlePeer)).toEqual([])
    expect(node.s.advert()).toMatchObject({ running: 3 })
  })

  test('tasks of PIPELINE_TASK_MS and more are started one per slot', () => {
    const { node, cmds } = holder(40, { slots: 2 })
    const fin = finish(node, pick(cmds, 'run-task')[0], ok('v', PIPELINE_TASK_MS))
    expect(runs(fin)).toHaveLength(1)
    expect(node.s.advert()).toMatchObject({ running: 2 })
  })
})

describe('results outbox', () => {
  test('a finished task goes to its owner and is resent until acked', () => {
    const { node, cmds } = holder(1)
    const fin = finish(node, pick(cmds, 'run-task')[0], ok('x'), 100)
    expect(pick(fin, 'send-results')).toMatchObject([
      { to: 'o', results: [{ job: 'j', index: 0, attempt: 0, ranOn: 'h' }] },
    ])
    const resent = pick(node.runUntil(2100), 'send-results')
    expect(resent).toHaveLength(1)
    node.feed({ type: 'results-acked', from: 'o', tasks: [key('j', 0)] })
    expect(pick(node.runUntil(10_000), 'send-results')).toEqual([])
    expect(pick(node.runUntil(12_000), 'send-lease')).toEqual([])
  })

  test('unacked results of one owner are resent in one command; at once when it reconnects', () => {
    const { node, cmds } = holder(2, { slots: 2 })
    for (const c of pick(cmds, 'run-task')) finish(node, c, ok(), 10)
    node.feed({ type: 'results-send-failed', to: 'o', tasks: [key('j', 0), key('j', 1)] })
    const back = node.feed({ type: 'peer-connected', peer: 'o', at: 20 })
    expect(types(back)).toEqual(['send-results', 'send-lease'])
    expect(pick(back, 'send-results')[0].results).toHaveLength(2)
  })
})

describe('owner answers', () => {
  test('a drop removes a queued task and cancels a running one, whose finish is then ignored', () => {
    const { node } = holder(2)
    const cmds = node.feed({
      type: 'lease-answered',
      from: 'o',
      drop: [key('j', 0), key('j', 1), key('j', 5)],
      cancelledJobs: [],
    })
    expect(types(cmds)).toEqual(['cancel-task'])
    expect(pick(cmds, 'cancel-task')[0].task).toEqual(key('j', 0))
    expect(node.s.advert()).toMatchObject({ freeSlots: 1, running: 0, ready: [] })
    expect(types(node.feed({ type: 'task-finished', task: key('j', 0), outcome: ok() }))).toEqual([])
  })

  test('a drop of another attempt is ignored', () => {
    const { node } = holder(1)
    expect(
      types(node.feed({ type: 'lease-answered', from: 'o', drop: [key('j', 0, 1)], cancelledJobs: [] })),
    ).toEqual([])
  })

  test('cancel from the owner drops queued tasks, cancels running ones and refuses more', () => {
    const { node, job } = holder(3)
    const cmds = node.feed({ type: 'cancel-received', from: 'o', job: 'j' })
    expect(types(cmds)).toEqual(['cancel-task'])
    const again = node.feed({
      type: 'batch-pushed',
      from: 'o',
      batch: { jobs: [job], tasks: [desc('j', 7)] },
    })
    expect(types(again)).toEqual([])
  })

  test('cancel from a peer that does not own the job is ignored', () => {
    const { node } = holder(2)
    expect(types(node.feed({ type: 'cancel-received', from: 'x', job: 'j' }))).toEqual([])
    expect(types(node.feed({ type: 'lease-answered', from: 'o', drop: [], cancelledJobs: ['j'] }))).toEqual([
      'cancel-task',
    ])
  })
})
