import { describe, expect, test } from 'vitest'
import { restoreBase } from '../../src/scheduler/owner.ts'
import { capacity, crashed, inputs, key, Node, ok, pick, result, spec, threw, types } from './helpers.ts'

function owner(n: number, over: Parameters<typeof spec>[2] = {}) {
  const node = new Node({ self: 'a', capacity: capacity(1) })
  node.submit(spec('j', 'a', over), inputs(n))
  const grant = node.feed({
    type: 'steal-requested',
    from: 'b',
    requestId: 1,
    free: { cpu: 8, gpu: 0, memoryMB: 9999 },
    max: 99,
  })
  return { node, given: pick(grant, 'reply-steal')[0].batch.tasks }
}

describe('task lifecycle', () => {
  test('an ok result of a stale attempt still wins', () => {
    const { node, given } = owner(3)
    node.feed({ type: 'peer-gone', peer: 'b' })
    const r = node.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', given[0].index, 0, ok())],
    })
    expect(types(r)).toContain('persist-results')
  })

  test('a crash of a stale attempt is not counted', () => {
    const { node, given } = owner(3, { maxAttempts: 2 })
    node.feed({ type: 'peer-gone', peer: 'b' })
    expect(node.s.stats().requeued).toBe(given.length)
    const r = node.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', given[0].index, 0, crashed())],
    })
    expect(types(r)).toEqual(['ack-results'])
    expect(node.s.stats().requeued).toBe(given.length)
  })

  test('a lease timeout counts toward poison', () => {
    const node = new Node({ self: 'a', capacity: capacity(1), leaseTimeoutMs: 100 })
    node.submit(spec('j', 'a', { maxAttempts: 1 }), inputs(3))
    node.feed({
      type: 'steal-requested',
      from: 'b',
      requestId: 1,
      free: { cpu: 8, gpu: 0, memoryMB: 9999 },
      max: 1,
    })
    const out = node.runUntil(100)
    const [p] = pick(out, 'persist-results')
    expect(p.results[0].outcome).toMatchObject({
      status: 'crashed',
      error: 'poison: failed on infrastructure 1 times: lease expired: holder b silent for 100 ms',
    })
  })

  test('user errors retry with new attempts up to retries, independent of infrastructure failures', () => {
    // Two CPUs per task: only b can run them, so b gets each retry back (see retry-elsewhere.test.ts).
    const big = { cpu: 2, gpu: 0, memoryMB: 100 }
    const { node, given } = owner(1, { retries: 2, maxAttempts: 5, resources: big })
    const i = given[0].index
    let attempt = 0
    for (const outcome of [threw(), crashed(), threw()]) {
      node.feed({ type: 'results-received', from: 'b', results: [result('j', i, attempt, outcome)] })
      attempt++
      const g = node.feed({
        type: 'steal-requested',
        from: 'b',
        requestId: 2,
        free: { cpu: 8, gpu: 0, memoryMB: 9999 },
        max: 99,
      })
      expect(pick(g, 'reply-steal')[0].batch.tasks.find((t) => t.index === i)?.attempt).toBe(attempt)
      node.feed({ type: 'lease-received', from: 'b', holdings: [key('j', i, attempt)] })
    }
    const last = node.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', i, attempt, threw())],
    })
    expect(pick(last, 'persist-results')[0].results[0].outcome.status).toBe('threw')
  })

  test('a restored owner hands out attempts above the clock at restart', () => {
    expect(restoreBase(1234.5)).toBe(1235)
    expect(restoreBase(Number.NEGATIVE_INFINITY)).toBe(1)
  })
})
