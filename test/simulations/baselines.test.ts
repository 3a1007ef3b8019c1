/** The baselines do what their definitions say. */
import { describe, expect, it } from 'vitest'
import { scenario as tiny } from '../../simulations/scenarios/tiny.ts'
import { scenario as uniform } from '../../simulations/scenarios/uniform.ts'
import { run, withSpec } from './helpers.ts'

/** n nodes, one slot each, speed 1 except the ones listed, one job of `tasks` 100 ms tasks. */
function flat(nodes: number, tasks: number, brokerMs = 0, _slow: number[] = []) {
  return withSpec(tiny, (s) => ({
    ...s,
    nodes,
    nodeClasses: [s.nodeClasses[0]],
    jobs: [{ ...s.jobs[0], tasks }],
    broker: { serviceMs: brokerMs },
    gantt: true,
  }))
}

describe('central queue', () => {
  it('hands out one task per worker slot at a time, each through the broker', () => {
    // The owner is n1; the broker is n0 (messages inside n0 are not network messages).
    const owned = withSpec(flat(4, 40), (s) => ({ ...s, jobs: [{ ...s.jobs[0], owner: 1 }] }))
    const { record } = run(owned, 'central', 1, 4)
    expect(record.outcome).toBe('ok')
    const onBroker = (record.gantt ?? []).filter((g) => g[0] === 0).length
    expect(record.messages.publish.count).toBe(40)
    expect(record.messages.deliver.count).toBe(40 - onBroker)
    expect(record.messages.brokerResult.count).toBe(40 - onBroker)
    expect(record.messages.forward.count).toBe(40)
    expect(record.messages.credit.count).toBe(3)
    expect(record.messages.stealRequest).toBeUndefined()
    // Prefetch 1: never two runs at once in one slot.
    const byNode = new Map<number, Array<[number, number]>>()
    for (const [node, , start, end] of record.gantt ?? [])
      byNode.set(node, [...(byNode.get(node) ?? []), [start, end]])
    for (const runs of byNode.values()) {
      runs.sort((a, b) => a[0] - b[0])
      for (let i = 1; i < runs.length; i++) expect(runs[i][0]).toBeGreaterThanOrEqual(runs[i - 1][1])
    }
  })

  it('is bound by its broker: each task costs the broker a publish, a delivery and an ack', () => {
    // 40 tasks x 3 messages x 5 ms of broker time = 600 ms at least, whatever the workers do.
    const { record } = run(flat(8, 40, 5), 'central', 1, 8)
    expect(record.outcome).toBe('ok')
    expect(record.metrics.makespanMs).toBeGreaterThanOrEqual(40 * 3 * 5)
    expect(record.strategyStats.brokerBusyUntil).toBeGreaterThanOrEqual(40 * 3 * 5)
  })
})

describe('random push', () => {
  it('deals tasks round robin at submit and never steals', () => {
    const { record } = run(flat(4, 40), 'random-push', 1, 4)
    expect(record.outcome).toBe('ok')
    const perNode = [0, 0, 0, 0]
    for (const g of record.gantt ?? []) perNode[g[0]]++
    expect(perNode).toEqual([10, 10, 10, 10])
    // One push per other node, no steals, no re-dealing.
    expect(record.messages.push.count).toBe(3)
    expect(record.messages.stealRequest).toBeUndefined()
    expect(record.strategyStats.reassigned).toBe(0)
  })

  it('cannot help a slow node: its share sets the makespan', () => {
    const slow = withSpec(flat(2, 4), (s) => ({
      ...s,
      nodeClasses: [{ ...s.nodeClasses[0], speed: { kind: 'choice', values: [1] } }],
    }))
    const { record, sim } = run(slow, 'random-push', 1, 2)
    expect(sim.mesh.nodes.map((n) => n.speed)).toEqual([1, 1])
    expect(record.metrics.makespanMs).toBe(202)
  })
})

describe('gridnode next to them', () => {
  it('steals, and beats random push on a mesh with fast and slow nodes', () => {
    const mixed = withSpec(uniform, (s) => ({
      ...s,
      nodeClasses: [{ ...s.nodeClasses[0], speed: { kind: 'choice', values: [0.25, 1, 2] } }],
      jobs: [{ ...s.jobs[0], tasks: 400 }],
    }))
    const ours = run(mixed, 'gridnode', 2, 8).record
    const push = run(mixed, 'random-push', 2, 8).record
    expect(ours.outcome).toBe('ok')
    expect(ours.metrics.stealMessagesPerTask).toBeGreaterThan(0)
    expect(ours.metrics.makespanMs).toBeLessThan(push.metrics.makespanMs)
  })
})
