import { describe, expect, test } from 'vitest'
import { ACCEPTS_ALL, openPolicy, policyBlockReason, refusal } from '../../src/scheduler/policy.ts'
import type { Accepts, JobSpec, NodePolicy } from '../../src/scheduler/types.ts'
import { advert, capacity, desc, inputs, key, Node, pick, ready, spec, types } from './helpers.ts'

const cmd: JobSpec['work'] = { kind: 'command', argv: ['true'], env: {}, stdoutMaxBytes: 0 }
const fn: JobSpec['work'] = { kind: 'function', bundle: 'b'.repeat(64), exportName: 'f' }

/** Accepts function tasks from everyone, command tasks only from `cmdFrom`. */
function noCommands(cmdFrom: string[] = []): Accepts {
  return { ...ACCEPTS_ALL, command: { all: false, peers: cmdFrom } }
}

function policy(over: Partial<NodePolicy> = {}, slots = 2): NodePolicy {
  return { ...openPolicy(slots), ...over }
}

describe('refusal', () => {
  test('kinds, GPU and foreign tasks', () => {
    const job = spec('j', 'o', { work: cmd })
    expect(refusal(undefined, job)).toBeUndefined()
    expect(refusal(ACCEPTS_ALL, job)).toBeUndefined()
    expect(refusal(noCommands(), job)).toBe('policy allows command tasks from none')
    expect(refusal(noCommands(['o']), job)).toBeUndefined()
    expect(refusal(noCommands(), spec('j', 'o', { work: fn }))).toBeUndefined()
    const gpu = { ...ACCEPTS_ALL, gpu: { all: false, peers: [] } }
    expect(refusal(gpu, spec('j', 'o', { resources: { cpu: 1, gpu: 1, memoryMB: 1 } }))).toBe(
      'policy allows GPU tasks from none',
    )
    expect(refusal({ ...ACCEPTS_ALL, foreign: false, reason: 'no sandbox' }, job)).toBe('no sandbox')
  })

  test('the blocked reason names each node', () => {
    const job = spec('j', '12D3KooWowner0000000000000000000000000000000000000000', { work: cmd })
    expect(policyBlockReason(job, [])).toBe('')
    expect(
      policyBlockReason(job, [
        { peer: 'a', reason: 'policy allows command tasks from none' },
        { peer: 'b', reason: 'no sandbox' },
      ]),
    ).toBe(
      'no node accepts command tasks from 12D3Ko…000000: a: policy allows command tasks from none; b: no sandbox',
    )
  })
})

describe('a node never steals what its policy refuses', () => {
  test('its steal carries its policy, and a victim grants only what the thief accepts', () => {
    const thief = new Node({ self: 't' })
    thief.feed({ type: 'policy-changed', policy: policy({ accepts: noCommands() }) })
    const cmds = thief.feed({ type: 'advert-received', peer: 'v', advert: advert({ ready: ready(4) }) })
    const [steal] = pick(cmds, 'send-steal')
    expect(steal.accepts.command).toEqual({ all: false, peers: [] })

    const victim = new Node({ self: 'v', capacity: capacity(0) })
    victim.submit(spec('c', 'v', { work: cmd }), inputs(4))
    victim.submit(spec('f', 'v', { work: fn }), inputs(4))
    const reply = victim.feed({
      type: 'steal-requested',
      from: 't',
      requestId: 1,
      free: steal.free,
      max: 8,
      accepts: steal.accepts,
    })
    const given = pick(reply, 'reply-steal')[0].batch
    expect(given.tasks.length).toBeGreaterThan(0)
    expect(given.tasks.every((d) => d.job === 'f')).toBe(true)
  })

  test('without accepts in the request, the victim goes by the thief’s advert', () => {
    const victim = new Node({ self: 'v', capacity: capacity(0) })
    victim.feed({ type: 'advert-received', peer: 't', advert: advert({ accepts: noCommands() }) })
    victim.submit(spec('c', 'v', { work: cmd }), inputs(4))
    const reply = victim.feed({
      type: 'steal-requested',
      from: 't',
      requestId: 1,
      free: { cpu: 4, gpu: 0, memoryMB: 9999 },
      max: 8,
    })
    expect(pick(reply, 'reply-steal')[0].batch.tasks).toEqual([])
  })

  test('a granted task the policy refuses is handed back unrun', () => {
    const thief = new Node({ self: 't' })
    thief.feed({ type: 'policy-changed', policy: policy({ accepts: noCommands() }) })
    const batch = { jobs: [spec('c', 'o', { work: cmd })], tasks: [desc('c', 0, 1)] }
    const cmds = thief.feed({ type: 'steal-granted', from: 'o', requestId: 0, batch })
    expect(pick(cmds, 'run-task')).toEqual([])
    expect(pick(cmds, 'send-lease')).toHaveLength(1)
    const [sent] = pick(cmds, 'send-results')
    expect(sent.results[0]).toMatchObject({ job: 'c', index: 0, attempt: 1, outcome: { status: 'returned' } })
    expect(thief.s.stats()).toMatchObject({ policyRefused: 1, returned: 1 })
  })

  test('a node whose owner policy lends no slots does not steal, and advertises no free slots', () => {
    const thief = new Node({ self: 't' })
    thief.feed({ type: 'policy-changed', policy: policy({ foreignSlots: 0 }) })
    const cmds = thief.feed({ type: 'advert-received', peer: 'v', advert: advert({ ready: ready(4) }) })
    expect(pick(cmds, 'send-steal')).toEqual([])
    expect(thief.s.advert().freeSlots).toBe(0)
    thief.feed({ type: 'policy-changed', policy: policy({ foreignSlots: 1 }) })
    expect(thief.s.advert().freeSlots).toBe(1)
  })
})

describe('pushes', () => {
  test('an owner does not push to a peer whose advert refuses the job', () => {
    const owner = new Node({ self: 'o', capacity: capacity(1) })
    owner.feed({ type: 'advert-received', peer: 'p', advert: advert({ accepts: noCommands() }) })
    const cmds = owner.submit(spec('c', 'o', { work: cmd }), inputs(6))
    expect(pick(cmds, 'push-batch')).toEqual([])
  })

  test('a refused push answers with the reason; the owner re-queues without counting an attempt', () => {
    const peer = new Node({ self: 'p' })
    peer.feed({ type: 'policy-changed', policy: policy({ accepts: noCommands() }) })
    const batch = { jobs: [spec('c', 'o', { work: cmd })], tasks: [desc('c', 0, 0)] }
    const cmds = peer.feed({ type: 'batch-pushed', from: 'o', batch })
    expect(types(cmds)).toEqual(['refuse-push'])
    expect(pick(cmds, 'refuse-push')[0]).toMatchObject({
      to: 'o',
      reason: 'policy allows command tasks from none',
    })

    // The owner pushed to a peer whose (stale) advert accepted everything.
    const owner = new Node({ self: 'o', capacity: capacity(1) })
    owner.feed({ type: 'advert-received', peer: 'p', advert: advert() })
    const submitted = owner.submit(spec('c', 'o', { work: cmd, maxAttempts: 1 }), inputs(6))
    const [push] = pick(submitted, 'push-batch')
    expect(push.to).toBe('p')
    const back = owner.feed({ type: 'push-refused', to: 'p', batch: push.batch, reason: 'no' })
    expect(types(back).filter((t) => t === 'job-finished')).toEqual([])
    expect(owner.s.jobProgress('c')).toMatchObject({ failed: 0 })
    // maxAttempts 1: had the refusal counted, the tasks would have failed as poison.
    expect(owner.s.stats().requeued).toBe(push.batch.tasks.length)
  })

  test('a suspended node refuses pushes', () => {
    const peer = new Node({ self: 'p' })
    peer.feed({ type: 'policy-changed', policy: policy({ suspended: true, foreignSlots: 0 }) })
    const batch = { jobs: [spec('f', 'o', { work: fn })], tasks: [desc('f', 0, 0)] }
    expect(pick(peer.feed({ type: 'batch-pushed', from: 'o', batch }), 'refuse-push')[0].reason).toMatch(
      /owner policy/,
    )
  })
})

describe('blocked reasons', () => {
  test('a job only peers could run, all of which refuse it, is blocked with each node’s reason', () => {
    const owner = new Node({ self: 'o', capacity: capacity(1) })
    owner.feed({ type: 'advert-received', peer: 'a', advert: advert({ accepts: noCommands() }) })
    owner.feed({
      type: 'advert-received',
      peer: 'b',
      advert: advert({ accepts: { ...ACCEPTS_ALL, foreign: false, reason: 'no sandbox' } }),
    })
    const big = { cpu: 2, gpu: 0, memoryMB: 100 }
    const cmds = owner.submit(spec('c', 'o', { work: cmd, resources: big }), inputs(2))
    expect(pick(cmds, 'job-blocked')).toMatchObject([
      {
        job: 'c',
        reason:
          'no node accepts command tasks from o: a: policy allows command tasks from none; b: no sandbox',
      },
    ])
    // b changes its policy: the job is no longer blocked.
    const cleared = owner.feed({ type: 'advert-received', peer: 'b', advert: advert() })
    expect(pick(cleared, 'job-blocked')).toMatchObject([{ job: 'c', reason: '' }])
    // ...and blocked again when b leaves.
    const gone = owner.feed({ type: 'peer-gone', peer: 'b' })
    expect(pick(gone, 'job-blocked')[0].reason).toMatch(/^no node accepts command tasks from o: a: /)
  })

  test('a job this node can run itself is never blocked by peers’ policies', () => {
    const owner = new Node({ self: 'o', capacity: capacity(1) })
    owner.feed({ type: 'advert-received', peer: 'a', advert: advert({ accepts: noCommands() }) })
    expect(pick(owner.submit(spec('c', 'o', { work: cmd }), inputs(2)), 'job-blocked')).toEqual([])
  })
})

describe('owner policy: suspend, resume, hand back', () => {
  function holding() {
    const node = new Node({ self: 'h', capacity: capacity(2) })
    const batch = {
      jobs: [spec('f', 'o', { work: fn })],
      tasks: [desc('f', 0, 1), desc('f', 1, 1), desc('f', 2, 1)],
    }
    const cmds = node.feed({ type: 'batch-pushed', from: 'o', batch })
    expect(pick(cmds, 'run-task')).toHaveLength(2)
    return node
  }

  test('busy suspends running foreign tasks at once, idle resumes them', () => {
    const node = holding()
    const busy = node.feed({ type: 'policy-changed', policy: policy({ suspended: true, foreignSlots: 0 }) })
    expect(pick(busy, 'suspend-tasks')).toEqual([
      { type: 'suspend-tasks', cause: expect.any(String), tasks: [key('f', 0, 1), key('f', 1, 1)] },
    ])
    // Nothing foreign starts while suspended, and the advert offers nothing.
    expect(node.s.advert().freeSlots).toBe(0)
    const idle = node.feed({ type: 'policy-changed', policy: policy() })
    expect(pick(idle, 'resume-tasks')[0].tasks).toEqual([key('f', 0, 1), key('f', 1, 1)])
    expect(pick(node.runUntil(200_000), 'send-results')).toEqual([])
  })

  test('suspended past the grace period, foreign tasks go back to their owner, unrun', () => {
    const node = holding()
    node.feed({
      type: 'policy-changed',
      at: 1000,
      policy: policy({ suspended: true, foreignSlots: 0, handBackAfterMs: 5000 }),
    })
    expect(node.s.nextDeadline()).toBeLessThanOrEqual(6000)
    const cmds = node.runUntil(6000)
    expect(pick(cmds, 'cancel-task').map((c) => c.task)).toEqual([key('f', 0, 1), key('f', 1, 1)])
    const sent = pick(cmds, 'send-results').flatMap((c) => c.results)
    expect(sent.map((r) => [r.index, r.outcome.status])).toEqual([
      [0, 'returned'],
      [1, 'returned'],
      [2, 'returned'],
    ])
    // A late task-finished of a cancelled run changes nothing.
    node.feed({
      type: 'task-finished',
      task: key('f', 0, 1),
      outcome: { status: 'rejected', error: 'cancelled', durationMs: 1 },
    })
    expect(node.s.stats().returned).toBe(3)
  })

  test('the owner re-queues a returned task with a new attempt, no failure counted', () => {
    const owner = new Node({ self: 'o', capacity: capacity(0) })
    owner.feed({ type: 'advert-received', peer: 'h', advert: advert() })
    const cmds = owner.submit(spec('f', 'o', { work: fn, maxAttempts: 1 }), inputs(1))
    const [push] = pick(cmds, 'push-batch')
    expect(push.to).toBe('h')
    const d = push.batch.tasks[0]
    const back = owner.feed({
      type: 'results-received',
      from: 'h',
      results: [
        {
          job: 'f',
          index: 0,
          attempt: d.attempt,
          ranOn: 'h',
          outcome: { status: 'returned', error: 'busy', durationMs: 0 },
        },
      ],
    })
    expect(pick(back, 'job-finished')).toEqual([])
    expect(pick(back, 'ack-results')).toHaveLength(1)
    expect(owner.s.stats()).toMatchObject({ handedBack: 1, requeued: 1 })
    // A steal now gets the new attempt.
    const grant = owner.feed({
      type: 'steal-requested',
      from: 'x',
      requestId: 1,
      free: { cpu: 1, gpu: 0, memoryMB: 9999 },
      max: 1,
    })
    expect(pick(grant, 'reply-steal')[0].batch.tasks[0].attempt).toBe(d.attempt + 1)
  })
})
