import { describe, expect, test } from 'vitest'
import { advert, capacity, inputs, key, Node, ok, pick, result, spec } from './helpers.ts'

/** Owner 'a' (1 slot) with 20 tasks; peers advertise themselves. */
function owner() {
  const node = new Node({ self: 'a', capacity: capacity(1) })
  node.submit(spec('j', 'a'), inputs(20))
  return node
}

describe('owner pushes', () => {
  test('pushes a first batch to an idle peer, sized like a steal for its free slots', () => {
    const node = owner()
    const cmds = node.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 3 }) })
    const [push] = pick(cmds, 'push-batch')
    expect(push.to).toBe('b')
    expect(push.batch.tasks).toHaveLength(6)
    expect(push.batch.jobs.map((j) => j.id)).toEqual(['j'])
    expect(node.s.stats().pushes).toBe(1)
    const lease = node.feed({
      type: 'lease-received',
      from: 'b',
      holdings: push.batch.tasks.map((t) => key('j', t.index)),
    })
    expect(pick(lease, 'answer-lease')[0].drop).toEqual([])
  })

  test('keeps one task per own slot and does not push to busy peers', () => {
    const node = new Node({ self: 'a', capacity: capacity(2) })
    node.submit(spec('j', 'a'), inputs(4))
    const busy = node.feed({
      type: 'advert-received',
      peer: 'b',
      advert: advert({ ready: [{ resources: { cpu: 1, gpu: 0, memoryMB: 1 }, count: 1 }] }),
    })
    expect(pick(busy, 'push-batch')).toEqual([])
    const idle = node.feed({ type: 'advert-received', peer: 'c', advert: advert({ freeSlots: 8 }) })
    expect(pick(idle, 'push-batch')).toEqual([])
  })

  test('does not push to the same peer again until its advert changes, or later', () => {
    const node = owner()
    const [push] = pick(
      node.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 1 }) }),
      'push-batch',
    )
    expect(
      pick(node.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 1 }) }), 'push-batch'),
    ).toEqual([])
    const holdings = push.batch.tasks.map((t) => key('j', t.index))
    expect(pick(node.feed({ type: 'lease-received', from: 'b', holdings }), 'push-batch')).toEqual([])
    expect(
      pick(node.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 2 }) }), 'push-batch'),
    ).toHaveLength(1)
    const quiet = node.feed({
      type: 'advert-received',
      at: node.now + 1000,
      peer: 'b',
      advert: advert({ freeSlots: 2 }),
    })
    expect(pick(quiet, 'push-batch')).toHaveLength(1)
  })

  test('a lease from a peer that holds nothing of ours makes it a push target again', () => {
    const node = owner()
    node.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 1 }) })
    const [push] = pick(node.log, 'push-batch')
    node.feed({
      type: 'results-received',
      from: 'b',
      results: push.batch.tasks.map((t) => result('j', t.index, 0, ok())),
    })
    expect(pick(node.feed({ type: 'lease-received', from: 'b', holdings: [] }), 'push-batch')).toHaveLength(1)
  })

  test('a failed push re-queues its tasks with a new attempt', () => {
    const node = owner()
    const [push] = pick(
      node.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 1 }) }),
      'push-batch',
    )
    node.feed({ type: 'push-failed', to: 'b', batch: push.batch, reason: 'reset' })
    expect(node.s.stats().requeued).toBe(2)
    const stale = node.feed({
      type: 'lease-received',
      from: 'b',
      holdings: push.batch.tasks.map((t) => key('j', t.index)),
    })
    expect(pick(stale, 'answer-lease')[0].drop).toHaveLength(2)
  })

  test('only pushes tasks the peer has room for', () => {
    const node = new Node({ self: 'a', capacity: capacity(1, 10_000) })
    node.submit(spec('big', 'a', { resources: { cpu: 1, gpu: 0, memoryMB: 5000 } }), inputs(10))
    const cmds = node.feed({
      type: 'advert-received',
      peer: 'b',
      advert: advert({ freeSlots: 4, freeMemoryMB: 1000 }),
    })
    expect(pick(cmds, 'push-batch')).toEqual([])
  })
})
