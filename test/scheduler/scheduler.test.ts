import { describe, expect, test } from 'vitest'
import type { Command, SchedulerEvent } from '../../src/scheduler/index.ts'
import { NodeScheduler } from '../../src/scheduler/index.ts'
import {
  advert,
  capacity,
  desc,
  type EventBody,
  inputs,
  key,
  Node,
  ok,
  pick,
  ready,
  result,
  spec,
  threw,
} from './helpers.ts'

/** A fixed script touching most event types. */
function script(): SchedulerEvent[] {
  const e: EventBody[] = [
    { type: 'tick', at: 0 },
    { type: 'advert-received', at: 1, peer: 'b', advert: advert({ ready: ready(4) }), rttMs: 2 },
    { type: 'advert-received', at: 1, peer: 'c', advert: advert({ ready: ready(9) }), rttMs: 1 },
    { type: 'job-submitted', at: 2, job: spec('j', 'a'), tasks: inputs(6, { 5: [0, 1] }) },
    {
      type: 'steal-requested',
      at: 3,
      from: 'c',
      requestId: 1,
      free: { cpu: 2, gpu: 0, memoryMB: 999 },
      max: 4,
    },
    { type: 'task-finished', at: 4, task: key('j', 0), outcome: ok() },
    {
      type: 'steal-granted',
      at: 5,
      from: 'b',
      requestId: 1,
      batch: { jobs: [spec('k', 'b')], tasks: [desc('k', 0)] },
    },
    { type: 'lease-received', at: 6, from: 'c', holdings: [key('j', 2)] },
    { type: 'results-received', at: 7, from: 'c', results: [result('j', 2, 0, ok(), 'c')] },
    { type: 'peer-gone', at: 8, peer: 'c' },
    { type: 'tick', at: 5000 },
  ]
  return e.map((x, i) => ({ ...x, cause: `c${i}` }) as SchedulerEvent)
}

function replay(seed: number): Command[][] {
  const s = new NodeScheduler({ self: 'a', capacity: capacity(2), seed })
  return script().map((e) => {
    const out = s.handle(e)
    s.checkInvariants()
    return out
  })
}

describe('NodeScheduler', () => {
  test('same seed, same events: identical commands', () => {
    expect(replay(7)).toEqual(replay(7))
  })

  test('every command carries the cause of its event', () => {
    const all = replay(3)
    all.forEach((cmds, i) => {
      for (const c of cmds) expect(c.cause).toBe(`c${i}`)
    })
  })

  test('an unknown event type is a bug and throws', () => {
    const s = new NodeScheduler({ self: 'a', capacity: capacity(), seed: 1 })
    expect(() => s.handle({ type: 'nope', at: 0, cause: 'x' } as unknown as SchedulerEvent)).toThrow(
      /unexpected/,
    )
  })

  test('its own advert and its own peer-gone are ignored', () => {
    const n = new Node({ self: 'a' })
    n.feed({ type: 'advert-received', peer: 'a', advert: advert({ ready: ready(5) }) })
    expect(pick(n.feed({ type: 'peer-gone', peer: 'a' }), 'send-steal')).toEqual([])
  })

  test('nextDeadline is undefined before any event and always in the future after one', () => {
    const s = new NodeScheduler({ self: 'a', capacity: capacity(), seed: 1 })
    expect(s.nextDeadline()).toBeUndefined()
    for (const e of script()) {
      s.handle(e)
      const d = s.nextDeadline()
      expect(d === undefined || d > e.at).toBe(true)
    }
  })

  test('time never runs backwards: an event from the past uses the latest time', () => {
    const n = new Node({ self: 'h', leaseIntervalMs: 100 })
    n.feed({
      type: 'batch-pushed',
      at: 1000,
      from: 'o',
      batch: { jobs: [spec('j', 'o')], tasks: [desc('j', 0)] },
    })
    n.feed({ type: 'tick', at: 500 })
    expect(n.s.nextDeadline()).toBe(1100)
  })

  test('runs that ended together (tasks-finished) are one step: the same outcome as one task-finished each', () => {
    const one = new Node({ self: 'a' })
    const many = new Node({ self: 'a' })
    const started = [one, many].map((n) => pick(n.submit(spec('j', 'a'), inputs(8)), 'run-task'))
    expect(started[0].map((c) => c.task)).toEqual(started[1].map((c) => c.task))
    // Two runs ended, one of them twice (a late duplicate is ignored either way), one failed.
    const ended = [
      { task: started[0][0].task, outcome: ok('x') },
      { task: started[0][1].task, outcome: threw() },
      { task: started[0][0].task, outcome: ok('late') },
    ]
    const singly = ended.flatMap((f) => one.feed({ type: 'task-finished', at: 5, ...f }))
    const together = many.feed({ type: 'tasks-finished', at: 5, finished: ended })
    // The same runs started next, the same results persisted, in the same order ...
    const persisted = (cmds: Command[]) => pick(cmds, 'persist-results').flatMap((c) => c.results)
    expect(pick(together, 'run-task').map((c) => c.task)).toEqual(pick(singly, 'run-task').map((c) => c.task))
    expect(persisted(together)).toEqual(persisted(singly))
    expect(persisted(together).map((r) => r.outcome.status)).toEqual(['ok', 'threw'])
    // ... as one write and one progress report.
    expect(pick(together, 'persist-results')).toHaveLength(1)
    expect(pick(together, 'job-progress')).toHaveLength(1)
    expect(pick(singly, 'persist-results').length).toBeGreaterThan(1)
    expect(many.s.jobProgress('j')).toEqual(one.s.jobProgress('j'))
    expect(many.s.stats()).toEqual(one.s.stats())
  })

  test('a result kept for another owner does not hold the batch buffer its value came in', () => {
    const n = new Node({ self: 'h' })
    const started = pick(
      n.feed({ type: 'batch-pushed', from: 'o', batch: { jobs: [spec('j', 'o')], tasks: [desc('j', 0)] } }),
      'run-task',
    )
    const batch = new Uint8Array(4096).fill(7)
    const out = n.feed({
      type: 'task-finished',
      task: started[0].task,
      outcome: { status: 'ok', value: batch.subarray(10, 13), durationMs: 1 },
    })
    const [sent] = pick(out, 'send-results').flatMap((c) => c.results)
    const value = (sent.outcome as { value: Uint8Array }).value
    expect([...value]).toEqual([7, 7, 7])
    expect(value.buffer.byteLength).toBe(3)
  })

  test('stats start at zero', () => {
    const s = new NodeScheduler({ self: 'a', capacity: capacity(), seed: 1 })
    expect(Object.values(s.stats()).every((v) => v === 0)).toBe(true)
    expect(Object.keys(s.stats()).sort()).toEqual(
      [
        'backups',
        'duplicateResults',
        'pushes',
        'refusedClaims',
        'refusedPushes',
        'refusedResults',
        'requeued',
        'stealsEmpty',
        'stealsGranted',
        'stealsSent',
        'tasksGiven',
        'tasksRun',
        'tasksStolen',
        'policyRefused',
        'jobIdCollisions',
        'returned',
        'handedBack',
      ].sort(),
    )
  })
})
