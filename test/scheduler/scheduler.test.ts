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
