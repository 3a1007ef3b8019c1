import { describe, expect, test } from 'vitest'
import { ACCEPTS_ALL } from '../../src/scheduler/policy.ts'
import { capacity, finish, inputs, Node, pick, spec } from './helpers.ts'

describe('adverts', () => {
  test('the first event publishes the advert', () => {
    const node = new Node({
      self: 'a',
      capacity: { slots: 2, memoryMB: 1000, gpus: [{ index: 0, name: 'g' }] },
    })
    const cmds = node.tick(0)
    expect(pick(cmds, 'publish-advert')).toEqual([
      {
        type: 'publish-advert',
        cause: expect.any(String),
        advert: {
          slots: 2,
          freeSlots: 2,
          memoryMB: 1000,
          freeMemoryMB: 1000,
          gpus: 1,
          freeGpus: 1,
          ready: [],
          running: 0,
          meanTaskMs: 0,
          accepts: ACCEPTS_ALL,
        },
      },
    ])
  })

  test('changes are published at most every advertMinIntervalMs; heartbeats every advertIntervalMs', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    node.tick(0)
    const submit = node.feed({ type: 'job-submitted', at: 50, job: spec('j', 'a'), tasks: inputs(3) })
    expect(pick(submit, 'publish-advert')).toEqual([])
    expect(node.s.nextDeadline()).toBe(100)
    const changed = node.tick(100)
    expect(pick(changed, 'publish-advert')[0].advert).toMatchObject({
      freeSlots: 0,
      running: 1,
      ready: [{ count: 2 }],
    })
    expect(node.s.nextDeadline()).toBe(1100)
    expect(pick(node.tick(1100), 'publish-advert')).toHaveLength(1)
  })

  test('a change undone inside advertMinIntervalMs publishes nothing; one that stays goes out at its end', () => {
    const node = new Node({ self: 'a', capacity: capacity(2) })
    expect(pick(node.tick(0), 'publish-advert')).toHaveLength(1)
    const cmds = node.submit(spec('j', 'a'), inputs(1))
    expect(node.s.nextDeadline()).toBe(100)
    // The task ends inside the window: the node looks as it did at 0.
    finish(node, pick(cmds, 'run-task')[0], { status: 'ok', value: new Uint8Array(), durationMs: 1 })
    expect(node.s.nextDeadline()).toBe(1000)
    expect(pick(node.tick(1000), 'publish-advert')[0].advert).toMatchObject({ running: 0, freeSlots: 2 })
    node.submit(spec('k', 'a', { resources: { cpu: 2, gpu: 0, memoryMB: 0 } }), inputs(2))
    expect(node.s.nextDeadline()).toBe(1100)
    const later = pick(node.tick(1100), 'publish-advert')[0].advert
    expect(later.freeSlots).toBe(0)
    expect(later.running).toBeGreaterThan(0)
  })

  test('a busy node republishes when its ready tasks grow or halve, not at every task; the heartbeat tells all', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    node.tick(0)
    const running = pick(
      node.feed({ type: 'job-submitted', at: 10, job: spec('j', 'a'), tasks: inputs(11) }),
      'run-task',
    )
    expect(pick(node.tick(100), 'publish-advert')[0].advert).toMatchObject({ ready: [{ count: 10 }] })
    /** Finishes the oldest running task (the worker is fed two at a time from then on). */
    const next = (at: number) => {
      const cmds = finish(
        node,
        running.shift()!,
        { status: 'ok', value: new Uint8Array(), durationMs: 1 },
        at,
      )
      running.push(...pick(cmds, 'run-task'))
      return node.s.nextDeadline()
    }
    // 10 -> 8 -> 7 -> 6 ready, running 1 -> 2: nothing a thief acts on; the next publish is the heartbeat.
    for (const at of [110, 120, 130]) expect(next(at)).toBe(1100)
    // 5: half of what was published.
    expect(next(140)).toBe(200)
    expect(pick(node.tick(200), 'publish-advert')[0].advert).toMatchObject({ ready: [{ count: 5 }] })
    expect(next(210)).toBe(1200)
    // More ready than published: at once (after the minimum interval).
    node.feed({ type: 'job-submitted', at: 220, job: spec('k', 'a'), tasks: inputs(3) })
    expect(node.s.nextDeadline()).toBe(300)
    expect(pick(node.tick(300), 'publish-advert')[0].advert.ready).toEqual([
      { resources: spec('k', 'a').resources, count: 7 },
    ])
    // The heartbeat carries exact counts and running tasks.
    expect(next(310)).toBe(1300)
    expect(pick(node.tick(1300), 'publish-advert')[0].advert).toMatchObject({
      running: 2,
      ready: [{ count: 6 }],
    })
  })

  test('advert() reflects the queue and the running set; mean task time after runs', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    const cmds = node.submit(spec('j', 'a'), inputs(2))
    finish(node, pick(cmds, 'run-task')[0], { status: 'ok', value: new Uint8Array(), durationMs: 40 })
    expect(node.s.advert()).toMatchObject({ freeSlots: 0, running: 1, ready: [], meanTaskMs: 40 })
  })
})
