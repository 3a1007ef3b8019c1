import { describe, expect, test } from 'vitest'
import type { Batch } from '../../src/scheduler/index.ts'
import { PeerView } from '../../src/scheduler/peers.ts'
import { ACCEPTS_ALL, openPolicy } from '../../src/scheduler/policy.ts'
import { resolveSettings } from '../../src/scheduler/runtime.ts'
import { batchSize, chooseVictim } from '../../src/scheduler/steal.ts'
import {
  advert,
  capacity,
  desc,
  finish,
  inputs,
  key,
  Node,
  ok,
  pick,
  ready,
  runs,
  spec,
  types,
} from './helpers.ts'

const s = resolveSettings({ self: 'a', capacity: capacity(), seed: 1, prefetchFactor: 2 })
const gpuClass = { cpu: 1, gpu: 1, memoryMB: 100 }

describe('batchSize', () => {
  test('prefetchFactor per free slot when no mean is known', () => {
    expect(batchSize(3, undefined, 0, s)).toBe(6)
  })
  test('targetBufferMs of work per slot for short tasks, own mean first', () => {
    expect(batchSize(2, 1, 100, s)).toBe(40)
    expect(batchSize(2, undefined, 4, s)).toBe(10)
    expect(batchSize(2, 100, 1, s)).toBe(4)
  })
  test('clamped to [1, maxBatch]', () => {
    expect(batchSize(0, undefined, 0, s)).toBe(1)
    expect(batchSize(64, 0.001, 0, s)).toBe(1024)
  })
})

describe('chooseVictim', () => {
  test('only peers with ready work that fits; weighted by count and nearness', () => {
    const view = new PeerView()
    view.update('far', advert({ ready: ready(100) }), 99, 0, 1000)
    view.update('near', advert({ ready: ready(100) }), 0, 0, 1000)
    view.update('gpu', advert({ ready: ready(1000, gpuClass) }), 0, 0, 1000)
    view.update('idle', advert(), 0, 0, 1000)
    const counts: Record<string, number> = {}
    let x = 0
    const random = () => {
      x = (x + 0.618034) % 1
      return x
    }
    const free = { cpu: 2, gpu: 0, memoryMB: 1000 }
    for (let i = 0; i < 1000; i++) {
      const v = chooseVictim(view, free, random) ?? 'none'
      counts[v] = (counts[v] ?? 0) + 1
    }
    expect(counts.gpu).toBeUndefined()
    expect(counts.near).toBeGreaterThan(950)
    expect(counts.far).toBeGreaterThan(0)
    expect(chooseVictim(new PeerView(), free, random)).toBeUndefined()
  })
})

/** An idle thief 't' (2 slots) that sees victim 'v' advertising ready work. */
function thief(opts: { stealBackoffMinMs?: number } = {}) {
  const node = new Node({ self: 't', capacity: capacity(2), ...opts })
  const cmds = node.feed({
    type: 'advert-received',
    peer: 'v',
    advert: advert({ ready: ready(10) }),
    rttMs: 1,
  })
  return { node, cmds }
}

/**
 * A thief 't' with one slot that stole two tasks of owner 'o' from 'v', ran the first in
 * `meanMs` and now runs the second with nothing queued, while 'v' advertises `vReady` ready tasks.
 */
function busyThief(meanMs: number, vReady: number) {
  const node = new Node({ self: 't', capacity: capacity(1) })
  node.feed({ type: 'advert-received', peer: 'v', advert: advert({ ready: ready(vReady) }), rttMs: 1 })
  const batch: Batch = { jobs: [spec('j', 'o')], tasks: [desc('j', 0), desc('j', 1)] }
  const first = pick(node.feed({ type: 'steal-granted', from: 'v', requestId: 1, batch }), 'run-task')
  expect(first).toHaveLength(1)
  const cmds = finish(node, first[0], ok('v', meanMs))
  expect(runs(cmds)).toEqual(['j/1@0'])
  return { node, cmds }
}

describe('thief', () => {
  test('an idle node steals from a peer advertising work it can run', () => {
    const { node, cmds } = thief()
    expect(pick(cmds, 'send-steal')).toEqual([
      {
        type: 'send-steal',
        cause: expect.any(String),
        to: 'v',
        requestId: 1,
        free: { cpu: 2, gpu: 0, memoryMB: 4096 },
        max: 4,
        accepts: ACCEPTS_ALL,
      },
    ])
    expect(
      pick(
        node.feed({ type: 'advert-received', peer: 'w', advert: advert({ ready: ready(5) }) }),
        'send-steal',
      ),
    ).toEqual([])
    expect(node.s.stats().stealsSent).toBe(1)
  })

  test('a granted batch is run and leased to its owners at once', () => {
    const { node } = thief()
    const batch: Batch = {
      jobs: [spec('j', 'o'), spec('k', 'v')],
      tasks: [desc('j', 0), desc('k', 3), desc('j', 1)],
    }
    const cmds = node.feed({ type: 'steal-granted', from: 'v', requestId: 1, batch })
    expect(types(cmds)).toEqual(['send-lease', 'send-lease', 'run-task', 'run-task'])
    expect(pick(cmds, 'send-lease').map((l) => [l.to, l.holdings])).toEqual([
      [
        'o',
        [
          { ...key('j', 0), copy: 1 },
          { ...key('j', 1), copy: 1 },
        ],
      ],
      ['v', [{ ...key('k', 3), copy: 1 }]],
    ])
    expect(node.s.stats()).toMatchObject({ stealsGranted: 1, tasksStolen: 3 })
  })

  test('empty grants back off, doubling with jitter; the next steal waits for the deadline', () => {
    const { node } = thief({ stealBackoffMinMs: 20 })
    const delays: number[] = []
    for (let i = 1; i <= 5; i++) {
      const t0 = node.now
      node.feed({ type: 'steal-granted', from: 'v', requestId: i, batch: { jobs: [], tasks: [] } })
      const d = node.s.nextDeadline() as number
      delays.push(d - t0)
      const cmds = node.tick(d)
      expect(pick(cmds, 'send-steal')).toMatchObject([{ requestId: i + 1 }])
    }
    expect(delays[0]).toBeGreaterThanOrEqual(10)
    expect(delays[0]).toBeLessThanOrEqual(20)
    expect(delays[4]).toBeGreaterThanOrEqual(160)
    expect(delays[4]).toBeLessThanOrEqual(320)
    expect(node.s.stats().stealsEmpty).toBe(5)
  })

  test('steal-failed backs off too; an advert with more work ends a backoff only after stealBackoffMinMs', () => {
    const { node } = thief({ stealBackoffMinMs: 20 })
    node.feed({ type: 'steal-failed', from: 'v', requestId: 1, reason: 'reset' })
    node.feed({ type: 'steal-granted', from: 'v', requestId: 99, batch: { jobs: [], tasks: [] } })
    const early = node.feed({
      type: 'advert-received',
      peer: 'v',
      advert: advert({ ready: ready(20) }),
      at: node.now + 5,
    })
    expect(pick(early, 'send-steal')).toEqual([])
    expect(node.s.nextDeadline()).toBeGreaterThan(node.now)
  })

  test('a node with queued work it can run does not steal', () => {
    const node = new Node({ self: 't', capacity: capacity(1) })
    node.submit(spec('j', 't'), inputs(3))
    expect(
      pick(
        node.feed({ type: 'advert-received', peer: 'v', advert: advert({ ready: ready(10) }) }),
        'send-steal',
      ),
    ).toEqual([])
  })

  test('a busy thief with short tasks and nothing queued steals ahead, one slot worth, from a peer with plenty', () => {
    const { node, cmds } = busyThief(20, 10)
    expect(pick(cmds, 'send-steal')).toEqual([
      {
        type: 'send-steal',
        cause: expect.any(String),
        to: 'v',
        requestId: 2,
        free: { cpu: 1, gpu: 0, memoryMB: 4096 },
        max: 2,
        accepts: ACCEPTS_ALL,
      },
    ])
    // What comes waits behind the running task (one at the worker, tasks this short go two per
    // slot, the other here); nothing more is asked while they wait.
    const got = node.feed({
      type: 'steal-granted',
      from: 'v',
      requestId: 2,
      batch: { jobs: [spec('j', 'o')], tasks: [desc('j', 10), desc('j', 11)] },
    })
    expect(runs(got)).toEqual(['j/10@0'])
    expect(pick(got, 'send-steal')).toEqual([])
  })

  test('no steal ahead for long tasks, nor from a peer with few ready tasks', () => {
    expect(pick(busyThief(500, 10).cmds, 'send-steal')).toEqual([])
    expect(pick(busyThief(20, 3).cmds, 'send-steal')).toEqual([])
  })

  test('a steal unanswered for leaseTimeoutMs counts as failed', () => {
    const { node } = thief()
    node.runUntil(5000)
    expect(node.s.stats().stealsEmpty).toBe(1)
  })
})

describe('victim', () => {
  function victim(n: number) {
    const node = new Node({ self: 'v', capacity: capacity(1) })
    node.submit(spec('j', 'v'), inputs(n))
    return node
  }

  test('grants about half its ready tasks, at most max, each fitting the thief', () => {
    const node = victim(9)
    const cmds = node.feed({
      type: 'steal-requested',
      from: 't',
      requestId: 7,
      free: { cpu: 1, gpu: 0, memoryMB: 4096 },
      max: 100,
    })
    const [reply] = pick(cmds, 'reply-steal')
    expect(reply).toMatchObject({ to: 't', requestId: 7 })
    expect(reply.batch.tasks.map((t) => t.index)).toEqual([1, 2, 3, 4])
    expect(reply.batch.jobs.map((j) => j.id)).toEqual(['j'])
    const capped = node.feed({
      type: 'steal-requested',
      from: 'u',
      requestId: 1,
      free: { cpu: 1, gpu: 0, memoryMB: 4096 },
      max: 1,
    })
    expect(pick(capped, 'reply-steal')[0].batch.tasks).toHaveLength(1)
    const small = node.feed({
      type: 'steal-requested',
      from: 'w',
      requestId: 1,
      free: { cpu: 1, gpu: 0, memoryMB: 10 },
      max: 9,
    })
    expect(pick(small, 'reply-steal')[0].batch.tasks).toEqual([])
    expect(node.s.stats().tasksGiven).toBe(5)
  })

  test('never grants running tasks; rotates across jobs', () => {
    const node = new Node({ self: 'v', capacity: capacity(1) })
    node.submit(spec('a', 'v'), inputs(3))
    node.submit(spec('b', 'v'), inputs(3))
    const cmds = node.feed({
      type: 'steal-requested',
      from: 't',
      requestId: 1,
      free: { cpu: 4, gpu: 0, memoryMB: 4096 },
      max: 10,
    })
    expect(pick(cmds, 'reply-steal')[0].batch.tasks.map((t) => `${t.job}${t.index}`)).toEqual([
      'b0',
      'a1',
      'b1',
    ])
  })

  describe('hands on other owners’ tasks only when they are worth a hop (handOnMinMs)', () => {
    const free = { cpu: 4, gpu: 0, memoryMB: 4096 }
    /** v holds 200 of o's tasks (more than its executor takes at once) and has run one in `ms`. */
    function holding(ms: number, handOnMinMs?: number) {
      const node = new Node({
        self: 'v',
        capacity: capacity(1),
        ...(handOnMinMs === undefined ? {} : { handOnMinMs }),
      })
      const batch: Batch = { jobs: [spec('j', 'o')], tasks: inputs(200).map((_, i) => desc('j', i)) }
      const first = node.feed({ type: 'batch-pushed', from: 'o', batch })
      const [run] = pick(first, 'run-task')
      node.feed({ type: 'task-finished', task: run.task, outcome: ok('v', ms) })
      return node
    }
    const steal = (node: Node, from: string) =>
      pick(node.feed({ type: 'steal-requested', from, requestId: 1, free, max: 100 }), 'reply-steal')[0].batch
        .tasks

    test('tiny tasks: none to another thief, none advertised, but their owner may take them back', () => {
      const node = holding(0.05)
      expect(node.s.advert().ready).toEqual([])
      expect(steal(node, 't')).toEqual([])
      expect(steal(node, 'o').length).toBeGreaterThan(0)
    })

    test('tasks of 1 ms or more, or of no known length, are handed on and advertised as before', () => {
      for (const node of [holding(1), holding(0.05, 0)]) {
        expect(node.s.advert().ready.length).toBe(1)
        expect(steal(node, 't').length).toBeGreaterThan(0)
      }
      const fresh = new Node({ self: 'v', capacity: capacity(1) })
      fresh.feed({
        type: 'batch-pushed',
        from: 'o',
        batch: { jobs: [spec('j', 'o')], tasks: [desc('j', 0), desc('j', 1), desc('j', 2)] },
      })
      expect(steal(fresh, 't').length).toBeGreaterThan(0)
    })

    test('tiny tasks it will not run itself (policy lends no slot, or refuses others’ tasks) go on to others', () => {
      for (const change of [{ foreignSlots: 0 }, { accepts: { ...ACCEPTS_ALL, foreign: false } }]) {
        const node = holding(0.05)
        expect(steal(node, 't')).toEqual([])
        node.feed({ type: 'policy-changed', policy: { ...openPolicy(1), ...change } })
        expect(node.s.advert().ready.length).toBe(1)
        expect(steal(node, 't').length).toBeGreaterThan(0)
      }
    })

    test('its own tasks are granted whatever their length', () => {
      const node = new Node({ self: 'v', capacity: capacity(1) })
      const [run] = pick(node.submit(spec('mine', 'v'), inputs(200)), 'run-task')
      node.feed({ type: 'task-finished', task: run.task, outcome: ok('v', 0.05) })
      expect(node.s.advert().ready.length).toBe(1)
      expect(steal(node, 't').length).toBeGreaterThan(0)
    })
  })

  test('a failed grant puts the tasks back, same attempt', () => {
    const node = victim(3)
    const cmds = node.feed({
      type: 'steal-requested',
      from: 't',
      requestId: 1,
      free: { cpu: 4, gpu: 0, memoryMB: 4096 },
      max: 10,
    })
    const batch = pick(cmds, 'reply-steal')[0].batch
    expect(node.s.advert().ready).toEqual(ready(1))
    node.feed({ type: 'grant-failed', to: 't', requestId: 1, batch })
    expect(node.s.advert().ready).toEqual(ready(2))
    const run = node.feed({ type: 'task-finished', task: key('j', 0), outcome: ok() })
    expect(pick(run, 'run-task')[0].task.attempt).toBe(0)
  })

  test('a holder that is not the owner re-holds a failed grant and leases it', () => {
    const node = new Node({ self: 'v', capacity: capacity(1) })
    const batch: Batch = { jobs: [spec('j', 'o')], tasks: [desc('j', 0), desc('j', 1), desc('j', 2)] }
    const first = node.feed({ type: 'batch-pushed', from: 'o', batch })
    const grant = node.feed({
      type: 'steal-requested',
      from: 't',
      requestId: 1,
      free: { cpu: 4, gpu: 0, memoryMB: 4096 },
      max: 9,
    })
    const given = pick(grant, 'reply-steal')[0].batch
    expect(given.tasks.map((t) => t.index)).toEqual([1])
    node.feed({ type: 'grant-failed', to: 't', requestId: 1, batch: given })
    finish(node, pick(first, 'run-task')[0], ok(), 10)
    const lease = pick(node.runUntil(1000), 'send-lease')[0]
    expect(lease.holdings.map((k) => k.index).sort()).toEqual([0, 1, 2])
  })
})
