/**
 * Issue 16's second custody race: a lease answer that names only task +
 * attempt can make a holder drop the copy it holds now. The interleaving,
 * owner o, holders a and b, one attempt of task T:
 *
 *   1. o grants T to a (copy 1, path [a]); a leases it at once (L1: T copy 1).
 *   2. b steals T from a (copy 2, path [a, b]); b leases it at once (Lb).
 *   3. a steals T back from b (copy 3, path [a, b, a]); a leases it (L2).
 *   4. Lb reaches o before L1 (L1 was slower): custody moves to b at hop 2.
 *   5. L1 reaches o: a's copy 1 is behind custody; o answers "drop T".
 *   6. a gets that answer while it holds copy 3, and drops it.
 *   7. L2 reaches o: custody moves back to a at hop 3, which holds nothing.
 *
 * Nobody holds T; o waits for leases that never name it, and T fails as
 * "lease expired" (poison with maxAttempts 1) in a fault-free run. With
 * copies, L1's entry names copy 1, the answer drops copy 1, and a keeps copy 3.
 */
import { describe, expect, test } from 'vitest'
import {
  type Batch,
  type Command,
  type CopyKey,
  handOff,
  TRUSTED_SIGNER,
  trustedHoldings,
} from '../../src/scheduler/index.ts'
import { type CommandOf, capacity, desc, finish, inputs, Node, pick, spec } from './helpers.ts'

const FREE = { cpu: 1, gpu: 0, memoryMB: 4096 }
let nextRequest = 1

/** `thief` steals up to `max` tasks from `victim`; the grant crosses the wire (credentials stamped). */
function steal(victim: Node, thief: Node, max: number): { batch: Batch; cmds: Command[] } {
  const requestId = nextRequest++
  const asked = victim.feed({ type: 'steal-requested', from: thief.self, requestId, free: FREE, max })
  const [reply] = pick(asked, 'reply-steal')
  const batch = handOff(reply.batch, victim.self, thief.self, TRUSTED_SIGNER)
  const cmds = thief.feed({ type: 'steal-granted', from: victim.self, requestId, batch })
  return { batch, cmds }
}

function leaseTo(cmds: Command[], owner: string): CommandOf<'send-lease'> {
  const [lease] = pick(cmds, 'send-lease').filter((c) => c.to === owner)
  if (lease === undefined) throw new Error(`no lease to ${owner}`)
  return lease
}

/** The owner hears a lease; returns its answer. */
function hear(owner: Node, from: Node, lease: CommandOf<'send-lease'>): CommandOf<'answer-lease'> {
  const cmds = owner.feed({
    type: 'lease-received',
    from: from.self,
    holdings: trustedHoldings(lease.holdings),
  })
  const [answer] = pick(cmds, 'answer-lease')
  return answer
}

function answerTo(holder: Node, owner: Node, answer: CommandOf<'answer-lease'>): Command[] {
  return holder.feed({ type: 'lease-answered', from: owner.self, drop: answer.drop, cancelledJobs: [] })
}

/**
 * Three nodes of one slot each; o owns job j (maxAttempts 1: one lost lease
 * fails it), b is busy with a task of its own so what it steals stays queued.
 * Plays steps 1-7 above; returns the nodes, T's index and a's answer to L1.
 */
function handOffAndStealBack() {
  const o = new Node({ self: 'o', capacity: capacity(1) })
  const a = new Node({ self: 'a', capacity: capacity(1) })
  const b = new Node({ self: 'b', capacity: capacity(1) })
  o.submit(spec('j', 'o', { maxAttempts: 1 }), inputs(6))
  b.submit(spec('k', 'b'), inputs(1))
  // 1. a steals 3 of o's 5 queued tasks: it runs one and queues two.
  const first = steal(o, a, 3)
  expect(first.batch.tasks).toHaveLength(3)
  const l1 = leaseTo(first.cmds, 'o')
  // 2. b steals one of them from a (T).
  const second = steal(a, b, 2)
  expect(second.batch.tasks).toHaveLength(1)
  const t = second.batch.tasks[0].index
  const lb = leaseTo(second.cmds, 'o')
  // 3. a steals T back from b.
  const third = steal(b, a, 1)
  expect(third.batch.tasks.map((d) => d.index)).toEqual([t])
  expect(third.batch.tasks[0].custody?.links.map((l) => l.to)).toEqual(['b', 'a'])
  const l2 = leaseTo(third.cmds, 'o')
  expect(l2.holdings).toEqual([expect.objectContaining({ job: 'j', index: t, copy: 3 })])
  // 4. b's lease overtakes a's first one: custody moves to b.
  expect(hear(o, b, lb).drop).toEqual([])
  expect(o.s.why('j', t)).toMatchObject({ state: 'remote', holder: 'b' })
  // 5. a's first lease, naming copy 1 of T.
  const answer1 = hear(o, a, l1)
  // 6. ...answered while a holds copy 3.
  answerTo(a, o, answer1)
  // 7. a's second lease.
  const answer2 = hear(o, a, l2)
  answerTo(a, o, answer2)
  return { o, a, b, t, answer1 }
}

/** Runs leases between a and o for `ms` of virtual time (nothing finishes). */
function leaseFor(o: Node, a: Node, ms: number): void {
  const end = a.now + ms
  while (a.now < end) {
    const at = Math.min(end, a.now + 100)
    o.tick(at)
    for (const lease of pick(a.tick(at), 'send-lease')) answerTo(a, o, hear(o, a, lease))
  }
}

describe('a lease answer names the copy it drops', () => {
  test('a drop for the copy a holder had does not remove the copy it got back (hand-off and steal-back)', () => {
    const { o, a, t, answer1 } = handOffAndStealBack()
    // o answered a's late lease with a drop of copy 1 (a past holder's old copy: stale, not a forgery).
    expect(answer1.drop).toEqual([{ job: 'j', index: t, attempt: 0, copy: 1 }])
    expect(o.s.stats().refusedClaims).toBe(0)
    expect(o.s.why('j', t)).toMatchObject({ state: 'remote', holder: 'a' })
    // a still holds T (copy 3): its leases keep naming it, and o never re-queues or fails it.
    leaseFor(o, a, 20_000)
    expect(o.s.stats().requeued).toBe(0)
    expect(o.s.jobProgress('j')).toMatchObject({ failed: 0 })
    expect(o.s.why('j', t)).toMatchObject({ state: 'remote', holder: 'a' })
    const next = leaseTo(a.tick(a.now + 1000), 'o')
    expect(next.holdings.find((h) => h.index === t)).toMatchObject({ attempt: 0, copy: 3 })
    // And it runs there: a's own running task ends, T starts, its result is accepted.
    const running = pick(a.log, 'run-task')
    expect(running).toHaveLength(1)
    const started = pick(finish(a, running[0]), 'run-task')
    const results = pick(a.log, 'send-results')
    o.feed({ type: 'results-received', from: 'a', results: results.flatMap((c) => c.results) })
    const onT = started.find((c) => c.task.index === t) ?? pick(finish(a, started[0]), 'run-task')[0]
    expect(onT.task.index).toBe(t)
    const done = pick(finish(a, onT), 'send-results')
    const acked = o.feed({ type: 'results-received', from: 'a', results: done.flatMap((c) => c.results) })
    expect(pick(acked, 'ack-results')[0].tasks).toContainEqual({ job: 'j', index: t, attempt: 0 })
    expect(o.s.why('j', t)).toMatchObject({ state: 'done' })
  })

  test("the recorded holder's lease naming an older copy than the recorded one is stale, not a refresh", () => {
    const { o, a, t } = handOffAndStealBack()
    // a's copy-1 lease arrives again (a duplicate, or a resend that crossed): custody stays at copy 3.
    const answer = hear(o, a, {
      type: 'send-lease',
      cause: 'x',
      to: 'o',
      holdings: [
        {
          job: 'j',
          index: t,
          attempt: 0,
          copy: 1,
          custody: { first: 'a', tag: new Uint8Array(0), links: [] },
        },
      ],
    })
    expect(answer.drop).toEqual([{ job: 'j', index: t, attempt: 0, copy: 1 }])
    answerTo(a, o, answer)
    leaseFor(o, a, 20_000)
    expect(o.s.jobProgress('j')).toMatchObject({ failed: 0 })
    expect(o.s.why('j', t)).toMatchObject({ state: 'remote', holder: 'a' })
  })

  test('a lease entry whose copy differs from its verified path is refused', () => {
    const { o, t } = handOffAndStealBack()
    const cmds = o.feed({
      type: 'lease-received',
      from: 'a',
      holdings: [{ job: 'j', index: t, attempt: 0, copy: 4, path: ['a', 'b', 'a'] }],
    })
    expect(pick(cmds, 'answer-lease')[0].drop).toEqual([{ job: 'j', index: t, attempt: 0, copy: 4 }])
    expect(o.s.stats().refusedClaims).toBe(1)
  })
})

describe('a holder answers for one copy', () => {
  const custody = (links: string[]) => ({
    first: 'h',
    tag: new Uint8Array(0),
    links: links.map((to) => ({ to, sig: new Uint8Array(0) })),
  })
  const grant = (n: Node, copyLinks: string[], from = 'o') =>
    n.feed({
      type: 'steal-granted',
      from,
      requestId: 0,
      batch: { jobs: [spec('j', 'o')], tasks: [{ ...desc('j', 0), custody: custody(copyLinks) }] },
    })

  test('a later copy of the attempt held replaces it (a delayed duplicate of the earlier grant arrived first)', () => {
    // One slot, busy with another task, so the copies of j/0 stay queued (a node with no slot
    // gives back what it is granted: such tasks never fit it).
    const h = new Node({ self: 'h', capacity: capacity(1) })
    const busy = h.feed({
      type: 'steal-granted',
      from: 'o',
      requestId: 0,
      batch: { jobs: [spec('busy', 'o')], tasks: [{ ...desc('busy', 0), custody: custody([]) }] },
    })
    expect(pick(busy, 'run-task')).toHaveLength(1)
    grant(h, [])
    const later = grant(h, ['x', 'h'], 'x')
    expect(leaseTo(later, 'o').holdings).toEqual([expect.objectContaining({ index: 0, copy: 3 })])
    // The older copy arriving again changes nothing; the lease still names copy 3.
    expect(leaseTo(grant(h, []), 'o').holdings).toEqual([expect.objectContaining({ index: 0, copy: 3 })])
    const drop = (copy?: number): CopyKey[] => [
      copy === undefined ? { job: 'j', index: 0, attempt: 0 } : { job: 'j', index: 0, attempt: 0, copy },
    ]
    h.feed({ type: 'lease-answered', from: 'o', drop: drop(1), cancelledJobs: [] })
    expect(h.s.advert().ready).toHaveLength(1)
    h.feed({ type: 'lease-answered', from: 'o', drop: drop(3), cancelledJobs: [] })
    expect(h.s.advert().ready).toHaveLength(0)
  })

  test('a finished copy stays owed to the owner after a drop naming an older copy (the shell keeps its outputs)', () => {
    const h = new Node({ self: 'h', capacity: capacity(1) })
    const [run] = pick(grant(h, ['x', 'h'], 'x'), 'run-task')
    expect(run.task).toMatchObject({ job: 'j', index: 0, attempt: 0 })
    finish(h, run)
    const t = { job: 'j', index: 0, attempt: 0 }
    expect(h.s.owesResult('o', t)).toBe(true)
    h.feed({ type: 'lease-answered', from: 'o', drop: [{ ...t, copy: 1 }], cancelledJobs: [] })
    expect(h.s.owesResult('o', t)).toBe(true)
    expect(h.s.owesResult('x', t)).toBe(false)
    h.feed({ type: 'lease-answered', from: 'o', drop: [{ ...t, copy: 3 }], cancelledJobs: [] })
    expect(h.s.owesResult('o', t)).toBe(false)
  })
})
