/**
 * Retries go to another node: a task that failed on a node is retried on one
 * it has not failed on when one fits, and a node that keeps failing a job's
 * tasks takes no more of them while another node can.
 */
import { describe, expect, it } from 'vitest'
import { advert, capacity, inputs, Node, pick, result, runs, spec, threw } from './helpers.ts'

const FREE = { cpu: 2, gpu: 0, memoryMB: 8192 }

function steal(n: Node, from: string, requestId: number) {
  return pick(n.feed({ type: 'steal-requested', from, requestId, free: FREE, max: 4 }), 'reply-steal')[0]
    .batch
}

describe('retries elsewhere', () => {
  it('pushes the retry of a task that threw on b to idle c, not back to b', () => {
    const a = new Node({ capacity: capacity(1) })
    a.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 0 }) })
    const first = a.submit(spec('j', 'a', { retries: 2 }), inputs(3))
    expect(runs(first)).toEqual(['j/0@0'])
    const batch = steal(a, 'b', 1)
    const mine = batch.tasks[0]
    a.feed({ type: 'advert-received', peer: 'c', advert: advert({ freeSlots: 2 }) })
    const cmds = a.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', 1, mine.attempt, threw())],
    })
    const pushes = pick(cmds, 'push-batch')
    expect(pushes.map((p) => [p.to, p.batch.tasks.map((d) => d.index)])).toEqual([['c', [mine.index]]])
    expect(a.s.why('j', mine.index)).toMatchObject({ state: 'remote', holder: 'c' })
  })

  it('keeps a failed task from the thief it failed on while this node can run it', () => {
    const a = new Node({ capacity: capacity(1) })
    a.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 0 }) })
    const first = a.submit(spec('j', 'a', { retries: 1 }), inputs(2))
    const batch = steal(a, 'b', 1)
    expect(batch.tasks.map((d) => d.index)).toEqual([1])
    a.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', 1, batch.tasks[0].attempt, threw())],
    })
    // b asks again: the retry stays here for this node's slot.
    expect(steal(a, 'b', 2).tasks).toEqual([])
    const run0 = pick(first, 'run-task')[0]
    const next = a.feed({
      type: 'task-finished',
      task: { job: 'j', index: 0, attempt: run0.task.attempt },
      outcome: { status: 'ok', value: new Uint8Array(1), durationMs: 5 },
    })
    expect(runs(next)).toEqual(['j/1@1'])
  })

  it('gives a task back to the node it failed on when no other node can run it', () => {
    const a = new Node({ capacity: capacity(1) })
    a.feed({ type: 'advert-received', peer: 'b', advert: advert({ slots: 4, freeSlots: 0 }) })
    a.submit(spec('big', 'a', { retries: 1, resources: { cpu: 2, gpu: 0, memoryMB: 100 } }), inputs(1))
    const batch = steal(a, 'b', 1)
    expect(batch.tasks).toHaveLength(1)
    a.feed({
      type: 'results-received',
      from: 'b',
      results: [result('big', 0, batch.tasks[0].attempt, threw())],
    })
    expect(steal(a, 'b', 2).tasks.map((d) => d.index)).toEqual([0])
  })

  it('stops giving a job to a node that keeps failing its tasks', () => {
    const a = new Node({ capacity: capacity(1) })
    a.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 0 }) })
    a.submit(spec('j', 'a'), inputs(10))
    const got = steal(a, 'b', 1)
    expect(got.tasks.length).toBeGreaterThanOrEqual(3)
    const failed = got.tasks.slice(0, 3).map((d) => result('j', d.index, d.attempt, threw()))
    a.feed({ type: 'results-received', from: 'b', results: failed })
    expect(steal(a, 'b', 2).tasks).toEqual([])
    // Another job of the same owner is still welcome on b.
    a.submit(spec('k', 'a'), inputs(4))
    expect(steal(a, 'b', 3).tasks.every((d) => d.job === 'k')).toBe(true)
  })
})
