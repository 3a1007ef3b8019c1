import { describe, expect, test } from 'vitest'
import { capacity, inputs, key, Node, ok, pick, result, runs, spec, types } from './helpers.ts'

/**
 * Owner 'a' (1 slot) with 4 tasks: 'b' steals 2, 'a' runs 2. Three results
 * come back within 30 ms each (mean 30 ms); the fourth stays with 'b'.
 */
function tail() {
  const node = new Node({ self: 'a', capacity: capacity(1), advertMinIntervalMs: 10, backupMinMs: 10 })
  const first = node.submit(spec('j', 'a'), inputs(4))
  const grant = node.feed({
    type: 'steal-requested',
    from: 'b',
    requestId: 1,
    free: { cpu: 4, gpu: 0, memoryMB: 8192 },
    max: 3,
  })
  const given = pick(grant, 'reply-steal')[0].batch.tasks
  expect(given).toHaveLength(2)
  const local1 = pick(first, 'run-task')[0]
  const next = node.feed({
    type: 'task-finished',
    at: 30,
    task: key('j', local1.task.index),
    outcome: ok('y', 30),
  })
  const local2 = pick(next, 'run-task')[0]
  node.feed({ type: 'task-finished', at: 40, task: key('j', local2.task.index), outcome: ok('y', 30) })
  node.feed({
    type: 'results-received',
    from: 'b',
    at: 50,
    results: [result('j', given[0].index, 0, ok('x', 30))],
  })
  return { node, straggler: given[1] }
}

describe('tail backups', () => {
  test('an idle owner runs one backup copy of a task held elsewhere too long; first result wins', () => {
    const { node, straggler } = tail()
    const early = node.runUntil(80)
    expect(runs(early)).toEqual([])
    const late = node.runUntil(200)
    expect(runs(late)).toEqual([`j/${straggler.index}@0`])
    expect(node.s.stats().backups).toBe(1)
    const win = node.feed({ type: 'task-finished', task: key('j', straggler.index), outcome: ok('w', 5) })
    expect(types(win)).toEqual(['persist-results', 'job-finished'])
    const lease = node.feed({ type: 'lease-received', from: 'b', holdings: [key('j', straggler.index)] })
    expect(pick(lease, 'answer-lease')[0].drop).toEqual([key('j', straggler.index)])
  })

  test('the remote copy winning cancels the local backup', () => {
    const { node, straggler } = tail()
    node.runUntil(200)
    const r = node.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', straggler.index, 0, ok())],
    })
    expect(types(r)).toEqual(['cancel-task', 'persist-results', 'ack-results', 'job-finished'])
  })

  test('no backups before a few results are in', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    node.submit(spec('j', 'a'), inputs(2))
    node.feed({
      type: 'steal-requested',
      from: 'b',
      requestId: 1,
      free: { cpu: 4, gpu: 0, memoryMB: 8192 },
      max: 3,
    })
    node.feed({ type: 'task-finished', at: 5, task: key('j', 0), outcome: ok() })
    expect(runs(node.runUntil(4000))).toEqual([])
  })
})
