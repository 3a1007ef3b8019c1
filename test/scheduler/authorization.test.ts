/**
 * Custody authorization, owner side and holder side: a member cannot take
 * custody of, or report a result for, a task nobody handed it. Paths here
 * stand for what the daemon verified (src/node/custody-credentials.ts).
 */
import { describe, expect, test } from 'vitest'
import { MAX_CUSTODY_LINKS } from '../../src/scheduler/index.ts'
import type { CustodyCredentials, TaskDescriptor, TaskOutcome } from '../../src/scheduler/types.ts'
import {
  capacity,
  crashed,
  dec,
  desc,
  finish,
  inputs,
  key,
  Node,
  ok,
  pick,
  rejected,
  result,
  spec,
  threw,
  types,
} from './helpers.ts'

const FREE = { cpu: 4, gpu: 0, memoryMB: 8192 }

/** An owner 'a' with one slot and a job of n tasks (task 0 starts here). */
function owner(n = 3) {
  const node = new Node({ self: 'a', capacity: capacity(1) })
  node.submit(spec('j', 'a'), inputs(n))
  return node
}

/** `peer` steals one task from the owner: returns it (custody: peer at hop 1). */
function stealOne(node: Node, peer = 'b'): TaskDescriptor {
  const cmds = node.feed({ type: 'steal-requested', from: peer, requestId: 1, free: FREE, max: 1 })
  const [t] = pick(cmds, 'reply-steal')[0].batch.tasks
  return t
}

function lease(node: Node, from: string, t: TaskDescriptor, path?: string[]) {
  const k = key('j', t.index, t.attempt)
  const cmds = node.feed({ type: 'lease-received', from, holdings: [path ? { ...k, path } : k] })
  return pick(cmds, 'answer-lease')[0].drop
}

function report(node: Node, from: string, t: TaskDescriptor, outcome = ok(from), path?: string[]) {
  const r = result('j', t.index, t.attempt, outcome, from)
  return node.feed({ type: 'results-received', from, results: [path ? { ...r, path } : r] })
}

/** Whether peer-gone of `peer` re-queues anything (i.e. the owner names it as a holder). */
function holds(node: Node, peer: string): boolean {
  const before = node.s.stats().requeued
  node.feed({ type: 'peer-gone', peer })
  return node.s.stats().requeued > before
}

describe('what a result may bring in (the shell asks before fetching its files)', () => {
  test('only a sender that could report the task: its holder, a past holder of that attempt, or one with a path', () => {
    const node = owner()
    const t = stealOne(node, 'b')
    const k = key('j', t.index, t.attempt)
    expect(node.s.mayBring('b', k, false)).toBe(true)
    expect(node.s.mayBring('c', k, false)).toBe(false)
    // A verified path ending at the sender may move custody: its files may come (the scheduler decides).
    expect(node.s.mayBring('c', k, true)).toBe(true)
    expect(node.s.mayBring('b', { ...k, attempt: 7 }, false)).toBe(false)
    expect(node.s.mayBring('b', key('nope', 0, 0), false)).toBe(false)
    report(node, 'b', t)
    // Done: a late copy from its holder still may (first result wins); nobody else, path or not.
    expect(node.s.mayBring('b', k, false)).toBe(true)
    expect(node.s.mayBring('c', k, true)).toBe(false)
  })
})

describe('leases', () => {
  test("a non-holder's lease cannot move custody", () => {
    const node = owner()
    const t = stealOne(node, 'b')
    expect(lease(node, 'c', t)).toEqual([key('j', t.index, 0)])
    // A path that does not pass through the recorded holder is no better.
    expect(lease(node, 'c', t, ['c'])).toEqual([key('j', t.index, 0)])
    expect(lease(node, 'c', t, ['x', 'c'])).toEqual([key('j', t.index, 0)])
    expect(node.s.stats().refusedClaims).toBe(3)
    expect(lease(node, 'b', t)).toEqual([])
    expect(holds(node, 'c')).toBe(false)
    expect(holds(node, 'b')).toBe(true)
  })

  test("a chain owner→b→c is accepted when c's lease arrives before b's", () => {
    const node = owner()
    const t = stealOne(node, 'b')
    expect(lease(node, 'c', t, ['b', 'c'])).toEqual([])
    expect(node.s.stats().refusedClaims).toBe(0)
    // b's next lease no longer names the task (it handed it on): nothing changes.
    node.feed({ type: 'lease-received', from: 'b', holdings: [] })
    const r = report(node, 'c', t, ok('from-c'))
    expect(types(r)).toEqual(['persist-results', 'ack-results'])
    expect(dec(okValue(r))).toBe('from-c')
    expect(holds(node, 'b')).toBe(false)
    expect(node.s.jobProgress('j')).toMatchObject({ done: 1 })
  })

  test('a replayed old grant (b→c after custody moved on to d) is refused', () => {
    const node = owner()
    const t = stealOne(node, 'b')
    expect(lease(node, 'c', t, ['b', 'c'])).toEqual([])
    expect(lease(node, 'd', t, ['b', 'c', 'd'])).toEqual([])
    // c held copy 2 once (custody passed through it): dropped as stale, not counted as refused.
    expect(lease(node, 'c', t, ['b', 'c'])).toEqual([key('j', t.index, 0)])
    // b forks the task to e after handing it to c: a branch that skips c is refused.
    expect(lease(node, 'e', t, ['b', 'e'])).toEqual([key('j', t.index, 0)])
    expect(lease(node, 'e', t, ['b', 'e', 'f', 'e'])).toEqual([key('j', t.index, 0)])
    expect(node.s.stats().refusedClaims).toBe(2)
    expect(holds(node, 'd')).toBe(true)
  })

  test('a chain that comes back through the same node is followed', () => {
    const node = owner()
    const t = stealOne(node, 'b')
    expect(lease(node, 'c', t, ['b', 'c'])).toEqual([])
    expect(lease(node, 'b', t, ['b', 'c', 'b'])).toEqual([])
    expect(holds(node, 'b')).toBe(true)
  })

  test('a task queued here again moves to a thief only with the owner grant ending at the thief', () => {
    const node = owner()
    const t = stealOne(node, 'b')
    node.feed({ type: 'grant-failed', to: 'b', requestId: 1, batch: { jobs: [spec('j', 'a')], tasks: [t] } })
    expect(lease(node, 'c', t, ['c', 'x'])).toEqual([key('j', t.index, 0)])
    expect(lease(node, 'b', t)).toEqual([key('j', t.index, 0)])
    expect(node.s.stats().refusedClaims).toBe(2)
    expect(lease(node, 'b', t, ['b'])).toEqual([])
    expect(holds(node, 'b')).toBe(true)
  })

  test('after a restore, claims without a valid path are refused', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    node.now = 5000
    node.feed({ type: 'job-restored', job: spec('j', 'a'), tasks: inputs(2), finished: [] })
    const t = desc('j', 0, 3)
    expect(lease(node, 'b', t)).toEqual([key('j', 0, 3)])
    expect(lease(node, 'b', t, ['b', 'c'])).toEqual([key('j', 0, 3)])
    expect(node.s.stats().refusedClaims).toBe(2)
    // Results without a path are refused as well (and not acked).
    expect(types(report(node, 'b', t))).toEqual([])
    expect(node.s.stats().refusedResults).toBe(1)
    expect(lease(node, 'c', t, ['b', 'c'])).toEqual([])
    expect(types(report(node, 'c', t))).toEqual(['persist-results', 'ack-results'])
  })
})

function okValue(cmds: ReturnType<Node['feed']>): Uint8Array {
  const o = pick(cmds, 'persist-results')[0].results[0].outcome
  if (o.status !== 'ok') throw new Error('not ok')
  return o.value
}

describe('results', () => {
  test("a non-holder's ok result is dropped and the real holder's result wins", () => {
    const node = owner()
    const t = stealOne(node, 'b')
    const forged = report(node, 'c', t, ok('forged'))
    expect(types(forged)).toEqual([])
    expect(node.s.stats().refusedResults).toBe(1)
    const real = report(node, 'b', t, ok('real'))
    expect(types(real)).toEqual(['persist-results', 'ack-results'])
    expect(dec(okValue(real))).toBe('real')
  })

  test('rejected or threw from a non-holder never fails the task', () => {
    const node = owner()
    const t = stealOne(node, 'b')
    expect(types(report(node, 'c', t, rejected()))).toEqual([])
    expect(types(report(node, 'c', t, threw()))).toEqual([])
    expect(node.s.jobProgress('j')).toMatchObject({ failed: 0 })
    expect(node.s.stats()).toMatchObject({ refusedResults: 2, requeued: 0 })
  })

  test('a result carrying a path through the holder moves custody and counts', () => {
    const node = owner()
    const t = stealOne(node, 'b')
    const r = report(node, 'c', t, ok('via-path'), ['b', 'c'])
    expect(types(r)).toEqual(['persist-results', 'ack-results'])
    expect(dec(okValue(r))).toBe('via-path')
  })

  test('a late result of an abandoned attempt from its real holder still counts', () => {
    const node = owner()
    const t = stealOne(node, 'b')
    node.feed({ type: 'peer-gone', peer: 'b' })
    expect(node.s.stats().requeued).toBe(1)
    const late = report(node, 'b', t, ok('late'))
    expect(types(late)).toEqual(['persist-results', 'ack-results'])
    // ...but not from a node that never held that attempt.
    const u = stealOne(node, 'c')
    expect(types(report(node, 'd', { ...u }, ok('x')))).toEqual([])
  })

  test('a result ran on its sender, whatever node its ranOn names', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    node.submit(spec('j', 'a', { maxAttempts: 1 }), inputs(4))
    const ranOn = (from: string, outcome: TaskOutcome) => {
      const t = stealOne(node, from)
      const r = result('j', t.index, t.attempt, outcome, 'c')
      const cmds = node.feed({ type: 'results-received', from, results: [r] })
      const stored = pick(cmds, 'persist-results').flatMap((p) => p.results.map((x) => x.ranOn))
      return { stored, story: node.s.why('j', t.index).story.at(-1)?.node }
    }
    // b's ok and b's crash (poison at once here), each reported as c's: stored, told and counted as b's.
    expect(ranOn('b', ok())).toEqual({ stored: ['b'], story: 'b' })
    expect(ranOn('b', crashed())).toEqual({ stored: ['b'], story: 'b' })
    expect(node.s.jobProgress('j')).toMatchObject({ nodes: 1 })
  })

  test("the owner's own results need no credentials", () => {
    const node = owner(1)
    const [run] = pick(node.log, 'run-task')
    expect(types(finish(node, run, ok('mine')))).toEqual(['persist-results', 'job-finished'])
  })
})

describe('pushes', () => {
  test('a push with owner ≠ sender is refused with nothing queued', () => {
    const node = new Node({ self: 'h', capacity: capacity(2) })
    const before = node.s.advert()
    const cmds = node.feed({
      type: 'batch-pushed',
      from: 'b',
      batch: { jobs: [spec('j', 'c')], tasks: [desc('j', 0), desc('j', 1)] },
    })
    expect(types(cmds)).toEqual([])
    // One job of the sender's and one of another owner: refused whole.
    const mixed = node.feed({
      type: 'batch-pushed',
      from: 'b',
      batch: { jobs: [spec('k', 'b'), spec('j', 'c')], tasks: [desc('k', 0), desc('j', 0)] },
    })
    expect(types(mixed)).toEqual([])
    expect(node.s.stats().refusedPushes).toBe(2)
    expect(node.s.advert()).toEqual(before)
    const fine = node.feed({
      type: 'batch-pushed',
      from: 'b',
      batch: { jobs: [spec('k', 'b')], tasks: [desc('k', 0)] },
    })
    expect(types(fine)).toEqual(['send-lease', 'run-task'])
  })

  const big = (job: string, index: number, bytes: number): TaskDescriptor => ({
    ...desc(job, index),
    input: new Uint8Array(bytes),
  })

  test("a push past the bytes held for its owner is refused whole, and accepted again once the owner's tasks have left", () => {
    const node = new Node({
      self: 'h',
      capacity: capacity(1),
      maxHeldBytesPerOwner: 1000,
      maxHeldBytes: 1500,
    })
    const push = (from: string, job: string, index: number, bytes: number) =>
      node.feed({
        type: 'batch-pushed',
        from,
        batch: { jobs: [spec(job, from)], tasks: [big(job, index, bytes)] },
      })
    const first = push('b', 'j', 0, 600)
    expect(types(first)).toEqual(['send-lease', 'run-task'])
    expect(types(push('b', 'j', 1, 300))).toEqual(['send-lease'])
    const over = push('b', 'j', 2, 200)
    expect(pick(over, 'refuse-push')[0].reason).toMatch(
      /holds 900 bytes of task inputs and unacked results of b; 200 more/,
    )
    expect(types(over)).toEqual(['refuse-push'])
    // Another owner has room of its own, up to the limit for all owners together.
    expect(types(push('c', 'k', 0, 500))).toEqual(['send-lease'])
    expect(pick(push('c', 'k', 1, 200), 'refuse-push')[0].reason).toMatch(
      /other owners' task inputs and unacked results; 200 more/,
    )
    // b's first task ends: its bytes are no longer held, and the refused push fits now.
    const next = finish(node, pick(first, 'run-task')[0], ok())
    expect(types(next)).toContain('run-task')
    expect(types(push('b', 'j', 2, 200))).toEqual(['send-lease'])
  })

  test('results an owner never acks count against what it may push', () => {
    const node = new Node({ self: 'h', capacity: capacity(1), maxHeldBytesPerOwner: 1000 })
    const push = (index: number, bytes: number) =>
      node.feed({
        type: 'batch-pushed',
        from: 'b',
        batch: { jobs: [spec('j', 'b')], tasks: [big('j', index, bytes)] },
      })
    const run = pick(push(0, 100), 'run-task')[0]
    // Its result (800 bytes) stays until b acks it.
    const done = finish(node, run, { status: 'ok', value: new Uint8Array(800), durationMs: 1 })
    expect(types(done)).toContain('send-results')
    expect(pick(push(1, 300), 'refuse-push')[0].reason).toMatch(
      /holds 800 bytes of task inputs and unacked results of b/,
    )
    node.feed({ type: 'results-acked', from: 'b', tasks: [key('j', 0, 0)] })
    expect(types(push(1, 300))).toContain('send-lease')
  })

  test('a push of tasks this node could never start is refused, not held forever', () => {
    const node = new Node({ self: 'h', capacity: capacity(2, 4096, 0) })
    for (const resources of [
      { cpu: 1e6, gpu: 0, memoryMB: 0 },
      { cpu: 1, gpu: 1, memoryMB: 0 },
      { cpu: 1, gpu: 0, memoryMB: 8192 },
    ]) {
      const cmds = node.feed({
        type: 'batch-pushed',
        from: 'b',
        batch: { jobs: [spec('j', 'b', { resources })], tasks: [desc('j', 0)] },
      })
      expect(types(cmds)).toEqual(['refuse-push'])
      expect(pick(cmds, 'refuse-push')[0].reason).toMatch(/this node has 2 slots, 4096 MB, 0 GPUs/)
    }
    expect(node.s.advert().ready).toEqual([])
  })
})

describe('steal grants get the checks pushes get', () => {
  const grant = (
    node: Node,
    from: string,
    job: string,
    tasks: TaskDescriptor[],
    over: Partial<ReturnType<typeof spec>> = {},
  ) =>
    node.feed({ type: 'steal-granted', from, requestId: 99, batch: { jobs: [spec(job, from, over)], tasks } })

  test('no more than the steal asked for (maxBatch for a grant nobody waits for)', () => {
    const node = new Node({ self: 'h', capacity: capacity(0), maxBatch: 2 })
    grant(node, 'o', 'j', [desc('j', 0), desc('j', 1), desc('j', 2), desc('j', 3)])
    expect(node.s.stats().tasksStolen).toBe(0) // a 0-slot node runs nothing: all given back
    const one = new Node({ self: 'h', capacity: capacity(1), maxBatch: 2 })
    const cmds = grant(one, 'o', 'j', [desc('j', 0), desc('j', 1), desc('j', 2), desc('j', 3)])
    expect(pick(cmds, 'send-lease')[0].holdings.map((k) => k.index)).toEqual([0, 1])
    expect(one.s.stats().tasksStolen).toBe(2)
  })

  test('tasks that never fit, or past the bytes held for their owner, are given back at once', () => {
    const node = new Node({ self: 'h', capacity: capacity(1), maxHeldBytesPerOwner: 1000 })
    const never = grant(node, 'o', 'j', [desc('j', 0)], { resources: { cpu: 1e6, gpu: 0, memoryMB: 0 } })
    expect(types(never)).not.toContain('run-task')
    expect(pick(never, 'send-results')[0].results[0].outcome).toMatchObject({
      status: 'returned',
      error: expect.stringMatching(/this node has 1 slots/),
    })
    const big = (i: number) => ({ ...desc('k', i), input: new Uint8Array(600) })
    const bytes = grant(node, 'o', 'k', [big(0), big(1)])
    expect(pick(bytes, 'run-task').map((c) => c.task.index)).toEqual([0])
    expect(pick(bytes, 'send-results')[0].results.map((r) => [r.index, r.outcome.status])).toEqual([
      [1, 'returned'],
    ])
    expect(node.s.stats().tasksStolen).toBe(1)
  })
})

describe('holder side', () => {
  const grant = (first: string, links: string[] = []): CustodyCredentials => ({
    first,
    tag: new Uint8Array(16).fill(7),
    links: links.map((to) => ({ to, sig: new Uint8Array(64) })),
  })

  test("leases and results carry the descriptor's credentials", () => {
    const node = new Node({ self: 'b', capacity: capacity(1) })
    const custody = grant('b')
    const cmds = node.feed({
      type: 'steal-granted',
      from: 'a',
      requestId: 0,
      batch: { jobs: [spec('j', 'a')], tasks: [{ ...desc('j', 0), custody }] },
    })
    expect(pick(cmds, 'send-lease')[0].holdings).toEqual([{ ...key('j', 0), copy: 1, custody }])
    const done = finish(node, pick(cmds, 'run-task')[0], ok('v'))
    expect(pick(done, 'send-results')[0].results[0].custody).toEqual(custody)
    // Until acked, the result stays in custody: the periodic lease still carries the credentials.
    const later = node.runUntil(1500)
    expect(pick(later, 'send-lease')[0].holdings).toEqual([{ ...key('j', 0), copy: 1, custody }])
  })

  test(`a copy whose chain already has ${MAX_CUSTODY_LINKS} links is not handed on`, () => {
    const node = new Node({ self: 'b', capacity: capacity(1) })
    const links = Array.from({ length: MAX_CUSTODY_LINKS }, (_, i) =>
      i === MAX_CUSTODY_LINKS - 1 ? 'b' : `n${i}`,
    )
    node.feed({
      type: 'steal-granted',
      from: 'x',
      requestId: 0,
      batch: {
        jobs: [spec('j', 'a')],
        tasks: [desc('j', 0), { ...desc('j', 1), custody: grant('n', links) }, desc('j', 2)],
      },
    })
    const cmds = node.feed({ type: 'steal-requested', from: 'c', requestId: 1, free: FREE, max: 10 })
    const given = pick(cmds, 'reply-steal')[0].batch.tasks.map((d) => d.index)
    expect(given).not.toContain(1)
    expect(node.s.advert().ready.reduce((n, c) => n + c.count, 0)).toBe(1)
  })
})
