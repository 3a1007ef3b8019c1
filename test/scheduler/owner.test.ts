import { describe, expect, test } from 'vitest'
import {
  advert,
  capacity,
  crashed,
  dec,
  finish,
  inputs,
  key,
  Node,
  ok,
  pick,
  ready,
  result,
  runs,
  spec,
  threw,
  types,
} from './helpers.ts'

/** An owner 'a' with one slot, and a job of n tasks. */
function owner(n = 3, over: Parameters<typeof spec>[2] = {}) {
  const node = new Node({ self: 'a', capacity: capacity(1) })
  const cmds = node.submit(spec('j', 'a', over), inputs(n))
  return { node, cmds }
}

/** Lets peer 'b' steal `max` tasks of the owner's queue; returns the granted descriptors. */
function stealBy(node: Node, peer = 'b', max = 10) {
  const cmds = node.feed({
    type: 'steal-requested',
    from: peer,
    requestId: 1,
    free: { cpu: 4, gpu: 0, memoryMB: 8192 },
    max,
  })
  const [reply] = pick(cmds, 'reply-steal')
  return reply.batch.tasks
}

describe('submit and local runs', () => {
  test('ready tasks go to the local queue and start while slots are free', () => {
    const { node, cmds } = owner(3)
    expect(types(cmds)).toEqual(['run-task'])
    expect(runs(cmds)).toEqual(['j/0@0'])
    expect(pick(cmds, 'job-progress')).toHaveLength(1)
    expect(pick(cmds, 'publish-advert')).toHaveLength(1)
    expect(node.s.jobProgress('j')).toEqual({ job: 'j', total: 3, done: 0, failed: 0, running: 1, nodes: 0 })
  })

  test('a local result is persisted (no ack), the next task starts, the job finishes once', () => {
    const { node, cmds } = owner(2)
    const c1 = finish(node, pick(cmds, 'run-task')[0], ok('v0'))
    expect(types(c1)).toEqual(['persist-results', 'run-task'])
    expect(pick(c1, 'persist-results')[0].results[0]).toMatchObject({
      job: 'j',
      index: 0,
      attempt: 0,
      ranOn: 'a',
    })
    const c2 = finish(node, pick(c1, 'run-task')[0], ok('v1'))
    expect(types(c2)).toEqual(['persist-results', 'job-finished'])
    const [fin] = pick(c2, 'job-finished')
    expect(fin).toMatchObject({
      job: 'j',
      status: 'done',
      progress: { total: 2, done: 2, failed: 0, nodes: 1 },
    })
    expect(pick(c2, 'job-progress')).toHaveLength(0)
    expect(node.tick(10_000).filter((c) => c.type === 'job-finished')).toHaveLength(0)
    expect(node.s.jobProgress('j')).toMatchObject({ done: 2 })
  })

  test('an empty job finishes at once', () => {
    const node = new Node()
    const cmds = node.submit(spec('e', 'a'), [])
    expect(pick(cmds, 'job-finished')).toMatchObject([{ job: 'e', status: 'done' }])
  })

  test('a resubmitted job id is ignored', () => {
    const { node } = owner(1)
    expect(types(node.submit(spec('j', 'a'), inputs(1)))).toEqual([])
  })
})

describe('dependencies', () => {
  test('a task starts when its deps are done and gets their values in deps order', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    let cmds = node.submit(spec('j', 'a'), inputs(3, { 2: [1, 0] }))
    cmds = finish(node, pick(cmds, 'run-task')[0], ok('v0'))
    cmds = finish(node, pick(cmds, 'run-task')[0], ok('v1'))
    const [run] = pick(cmds, 'run-task')
    expect(run.task.index).toBe(2)
    expect(run.task.depValues.map(dec)).toEqual(['v1', 'v0'])
  })

  test('a failed dependency fails its dependents, transitively, and they are persisted', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    const cmds = node.submit(spec('j', 'a'), inputs(3, { 1: [0], 2: [1] }))
    const out = finish(node, pick(cmds, 'run-task')[0], { status: 'rejected', error: 'bad', durationMs: 1 })
    const persisted = pick(out, 'persist-results').flatMap((p) => p.results)
    expect(persisted.map((r) => [r.index, r.outcome.status === 'ok' ? '' : r.outcome.error])).toEqual([
      [0, 'bad'],
      [1, 'dependency 0 failed'],
      [2, 'dependency 1 failed'],
    ])
    expect(pick(out, 'job-finished')).toMatchObject([{ status: 'failed', progress: { failed: 3 } }])
  })

  test('missing dependencies and cycles fail at submit', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    const cmds = node.submit(spec('j', 'a'), inputs(4, { 0: [9], 1: [2], 2: [1] }))
    const errors = pick(cmds, 'persist-results')
      .flatMap((p) => p.results)
      .map((r) => (r.outcome.status === 'ok' ? '' : `${r.index}:${r.outcome.error}`))
      .sort()
    expect(errors).toEqual(['0:dependency 9 does not exist', '1:dependency cycle', '2:dependency 1 failed'])
    expect(runs(cmds)).toEqual(['j/3@0'])
  })
})

describe('results from holders', () => {
  test('first result wins; duplicates are acked, counted and not persisted again', () => {
    const { node } = owner(3)
    const [t1] = stealBy(node, 'b', 1)
    const first = node.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', t1.index, 0, ok('x'))],
    })
    expect(types(first)).toEqual(['persist-results', 'ack-results'])
    const again = node.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', t1.index, 0, ok('y'))],
    })
    expect(types(again)).toEqual(['ack-results'])
    expect(pick(again, 'ack-results')[0]).toMatchObject({ to: 'b', tasks: [key('j', t1.index, 0)] })
    expect(node.s.stats().duplicateResults).toBe(1)
    // A node that never held the task gets no ack at all.
    const stranger = node.feed({
      type: 'results-received',
      from: 'c',
      results: [result('j', t1.index, 0, ok('y'), 'c')],
    })
    expect(types(stranger)).toEqual([])
    expect(node.s.stats()).toMatchObject({ duplicateResults: 1, refusedResults: 1 })
  })

  test('persist-results always precedes ack-results', () => {
    const { node } = owner(4)
    const batch = stealBy(node, 'b', 2)
    const cmds = node.feed({
      type: 'results-received',
      from: 'b',
      results: batch.map((t) => result('j', t.index, t.attempt, ok())),
    })
    const order = types(cmds)
    expect(order.indexOf('persist-results')).toBeLessThan(order.indexOf('ack-results'))
  })

  test('threw is retried with a new attempt while retries last, then fails; stale errors are ignored', () => {
    const { node } = owner(2, { retries: 1 })
    const [t] = stealBy(node, 'b', 1)
    const r1 = node.feed({ type: 'results-received', from: 'b', results: [result('j', t.index, 0, threw())] })
    expect(types(r1)).toEqual(['ack-results'])
    expect(node.s.stats().requeued).toBe(1)
    const stale = node.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', t.index, 0, threw())],
    })
    expect(types(stale)).toEqual(['ack-results'])
    const [t2] = stealBy(node, 'c', 1)
    expect(t2).toMatchObject({ index: t.index, attempt: 1 })
    const r2 = node.feed({ type: 'results-received', from: 'c', results: [result('j', t.index, 1, threw())] })
    expect(pick(r2, 'persist-results')[0].results[0].outcome).toMatchObject({
      status: 'threw',
      error: 'boom',
    })
  })

  test('rejected fails at once', () => {
    const { node } = owner(2, { retries: 5 })
    const [t] = stealBy(node, 'b', 1)
    const r = node.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', t.index, 0, { status: 'rejected', error: 'no bundle', durationMs: 0 })],
    })
    expect(pick(r, 'persist-results')[0].results[0].outcome).toMatchObject({ status: 'rejected' })
  })

  test('crashes are infrastructure failures: re-queued, then failed as poison', () => {
    const { node } = owner(2, { maxAttempts: 2 })
    const [t] = stealBy(node, 'b', 1)
    expect(
      types(
        node.feed({ type: 'results-received', from: 'b', results: [result('j', t.index, 0, crashed())] }),
      ),
    ).toEqual(['ack-results'])
    const [t2] = stealBy(node, 'c', 1)
    expect(t2.attempt).toBe(1)
    const r = node.feed({
      type: 'results-received',
      from: 'c',
      results: [result('j', t.index, 1, crashed())],
    })
    expect(pick(r, 'persist-results')[0].results[0].outcome).toMatchObject({
      status: 'crashed',
      error: 'poison: crashed its worker 2 times: oom',
    })
  })

  test('results for unknown jobs are acked and dropped', () => {
    const node = new Node()
    const r = node.feed({ type: 'results-received', from: 'b', results: [result('zz', 0, 0, ok())] })
    expect(types(r)).toEqual(['ack-results'])
  })
})

describe('leases', () => {
  test('a lease for the current attempt keeps custody; stale, done and unknown ones are dropped', () => {
    const { node } = owner(4)
    const batch = stealBy(node, 'b', 2)
    node.feed({ type: 'results-received', from: 'b', results: [result('j', batch[1].index, 0, ok())] })
    const cmds = node.feed({
      type: 'lease-received',
      from: 'b',
      holdings: [
        key('j', batch[0].index, 0),
        key('j', batch[0].index, 7),
        key('j', batch[1].index, 0),
        key('x', 0, 0),
      ],
    })
    expect(pick(cmds, 'answer-lease')).toEqual([
      {
        type: 'answer-lease',
        cause: expect.any(String),
        to: 'b',
        drop: [key('j', batch[0].index, 7), key('j', batch[1].index, 0), key('x', 0, 0)],
        cancelledJobs: [],
      },
    ])
  })

  test('a task whose lease runs out is re-queued with a new attempt (infrastructure failure)', () => {
    const { node } = owner(3)
    const [t] = stealBy(node, 'b', 1)
    node.now = 3000
    node.feed({ type: 'lease-received', from: 'b', holdings: [key('j', t.index, 0)] })
    node.runUntil(7999)
    expect(node.s.stats().requeued).toBe(0)
    node.runUntil(8000)
    expect(node.s.stats().requeued).toBe(1)
    const answer = node.feed({ type: 'lease-received', from: 'b', holdings: [key('j', t.index, 0)] })
    expect(pick(answer, 'answer-lease')[0].drop).toEqual([key('j', t.index, 0)])
  })

  test('peer-gone re-queues every task that peer held at once', () => {
    const { node } = owner(5)
    stealBy(node, 'b', 2)
    node.feed({ type: 'peer-gone', peer: 'b' })
    expect(node.s.stats().requeued).toBe(2)
  })

  test('a lease naming a task queued here (a grant that failed on our side only) moves custody', () => {
    const { node } = owner(3)
    const batch = stealBy(node, 'b', 1)
    node.feed({
      type: 'grant-failed',
      to: 'b',
      requestId: 1,
      batch: { jobs: [spec('j', 'a')], tasks: batch },
    })
    // Without credentials the claim is refused; with the owner's grant (path [b]) it moves custody.
    const bare = node.feed({ type: 'lease-received', from: 'b', holdings: [key('j', batch[0].index, 0)] })
    expect(pick(bare, 'answer-lease')[0].drop).toEqual([key('j', batch[0].index, 0)])
    expect(node.s.stats().refusedClaims).toBe(1)
    const cmds = node.feed({
      type: 'lease-received',
      from: 'b',
      holdings: [{ ...key('j', batch[0].index, 0), path: ['b'] }],
    })
    expect(pick(cmds, 'answer-lease')[0].drop).toEqual([])
    expect(node.s.advert().ready).toEqual(ready(1))
  })

  test("a holder's lease sent before it handed the task back to the owner cannot claim it again", () => {
    const { node } = owner(3)
    const [t] = stealBy(node, 'b', 1)
    // The owner steals from b and gets its own task back (b added a link: path [b, a])...
    const custody = { first: 'b', tag: new Uint8Array(16), links: [{ to: 'a', sig: new Uint8Array(64) }] }
    node.feed({
      type: 'steal-granted',
      from: 'b',
      requestId: 9,
      batch: { jobs: [spec('j', 'a')], tasks: [{ ...t, custody }] },
    })
    expect(node.s.why('j', t.index)).toMatchObject({ state: 'local' })
    // ...and then b's periodic lease, sent just before, arrives with b's old grant (path [b]).
    const answer = node.feed({
      type: 'lease-received',
      from: 'b',
      holdings: [{ ...key('j', t.index, t.attempt), path: ['b'] }],
    })
    expect(pick(answer, 'answer-lease')[0].drop).toEqual([key('j', t.index, t.attempt)])
    // The task stays queued here: no lease of b's has to keep it alive, none runs out.
    expect(node.s.why('j', t.index)).toMatchObject({ state: 'local' })
    node.runUntil(20_000)
    expect(node.s.why('j', t.index)).toMatchObject({ state: 'local' })
    expect(node.s.stats().requeued).toBe(0)
    expect(node.s.jobProgress('j')).toMatchObject({ failed: 0 })
  })
})

describe('restore', () => {
  test('finished tasks come from the store; the rest wait in doubt, then are re-queued', () => {
    const node = new Node({ self: 'a', capacity: capacity(1), restoreGraceMs: 500 })
    node.now = 10_000
    const cmds = node.feed({
      type: 'job-restored',
      job: spec('j', 'a'),
      tasks: inputs(3, { 2: [0] }),
      finished: [{ index: 0, ok: true, value: new TextEncoder().encode('v0') }],
    })
    expect(types(cmds)).toEqual([])
    expect(node.s.jobProgress('j')).toMatchObject({ total: 3, done: 1 })
    const later = node.runUntil(10_500)
    const started = pick(later, 'run-task')
    expect(started).toHaveLength(1)
    expect(started[0].task.attempt).toBeGreaterThan(10_000)
    expect(node.s.stats().requeued).toBe(2)
  })

  test('a holder claims an in-doubt task by lease and its result is accepted', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    node.now = 5000
    node.feed({
      type: 'job-restored',
      job: spec('j', 'a'),
      tasks: inputs(2),
      finished: [{ index: 1, ok: false }],
    })
    const lease = node.feed({
      type: 'lease-received',
      from: 'b',
      holdings: [{ ...key('j', 0, 3), path: ['b'] }],
    })
    expect(pick(lease, 'answer-lease')[0].drop).toEqual([])
    node.runUntil(9000)
    expect(node.s.stats().requeued).toBe(0)
    const r = node.feed({ type: 'results-received', from: 'b', results: [result('j', 0, 3, ok())] })
    expect(types(r)).toEqual(['persist-results', 'ack-results', 'job-finished'])
    expect(pick(r, 'job-finished')[0].status).toBe('failed')
  })
})

describe('cancel', () => {
  test('cancels local runs, tells remote holders, finishes as cancelled, then drops late results', () => {
    const { node } = owner(4)
    stealBy(node, 'b', 2)
    const cmds = node.feed({ type: 'job-cancelled', job: 'j' })
    expect(types(cmds)).toEqual(['cancel-task', 'send-cancel', 'job-finished'])
    expect(pick(cmds, 'send-cancel')[0]).toMatchObject({ to: 'b', job: 'j' })
    expect(pick(cmds, 'job-finished')[0].status).toBe('cancelled')
    expect(node.s.advert().ready).toEqual([])
    const late = node.feed({ type: 'results-received', from: 'b', results: [result('j', 1, 0, ok())] })
    expect(types(late)).toEqual(['ack-results'])
    const lease = node.feed({ type: 'lease-received', from: 'b', holdings: [key('j', 2, 0)] })
    expect(pick(lease, 'answer-lease')[0]).toMatchObject({ drop: [key('j', 2, 0)], cancelledJobs: ['j'] })
  })
})

describe('progress and placement notices', () => {
  test('at most one job-progress per job per handle()', () => {
    const { node } = owner(6)
    const batch = stealBy(node, 'b', 3)
    const cmds = node.feed({
      type: 'results-received',
      from: 'b',
      results: batch.map((t) => result('j', t.index, 0, ok())),
    })
    expect(pick(cmds, 'job-progress')).toHaveLength(1)
    expect(pick(cmds, 'job-progress')[0].progress).toMatchObject({ done: 3, nodes: 1 })
  })

  test('a job no known node can run is blocked until an advert shows one that can', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    node.feed({ type: 'advert-received', peer: 'b', advert: advert() })
    const cmds = node.submit(spec('g', 'a', { resources: { cpu: 1, gpu: 1, memoryMB: 10 } }), inputs(1))
    expect(pick(cmds, 'job-blocked')).toMatchObject([
      { job: 'g', reason: 'needs 1 GPU; no node in the mesh advertises a GPU (2 nodes known)' },
    ])
    expect(pick(node.feed({ type: 'advert-received', peer: 'c', advert: advert() }), 'job-blocked')).toEqual(
      [],
    )
    const cleared = node.feed({
      type: 'advert-received',
      peer: 'd',
      advert: advert({ gpus: 1, freeGpus: 1 }),
    })
    expect(pick(cleared, 'job-blocked')).toMatchObject([{ job: 'g', reason: '' }])
  })
})

describe('defensive input', () => {
  test('a job submitted here is owned here even if its spec names another owner', () => {
    const node = new Node({ self: 'a', capacity: capacity(1) })
    const cmds = node.submit(spec('j', 'zz'), inputs(1))
    expect(pick(cmds, 'run-task')[0].job.owner).toBe('a')
    const done = finish(node, pick(cmds, 'run-task')[0], ok())
    expect(types(done)).toEqual(['persist-results', 'job-finished'])
  })
})
