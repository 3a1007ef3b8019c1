/**
 * What a peer hears (src/scheduler/hearing.ts), with real schedulers at both
 * ends. The daemon, the simulator and sim-net once each wrote this mapping;
 * each test below names the difference it pins (the daemon's behaviour won).
 */
import { describe, expect, test } from 'vitest'
import {
  answerHeard,
  answerLost,
  type Carried,
  LATE_GRANT,
  lateGrant,
  leaseAnswer,
  pushAnswer,
  type RequestCommand,
  requestHeard,
  requestLost,
  resultsAnswer,
  stealAnswer,
} from '../../src/scheduler/hearing.ts'
import {
  type Command,
  handOff,
  type SchedulerEvent,
  TRUSTED_SIGNER,
  trustedHoldings,
  trustedResults,
} from '../../src/scheduler/index.ts'
import { advert, type CommandOf, inputs, key, Node, ok, pick, ready, result, spec } from './helpers.ts'

/** One lease entry (a variable: HeldKey grows fields the tests need not name). */
const held = [{ ...key('j', 1), copy: 0 }]

const carried: Carried = {
  batch: (b, from, to) => handOff(b, from, to, TRUSTED_SIGNER),
  results: trustedResults,
  holdings: trustedHoldings,
}

/** An owner `o` with 6 queued tasks and a thief `t` that sees its advert and asks. */
function stealing() {
  const o = new Node({ self: 'o', capacity: { slots: 1, memoryMB: 4096, gpus: [] } })
  o.submit(spec('j', 'o'), inputs(6))
  const t = new Node({ self: 't' })
  const cmds = t.feed({
    type: 'advert-received',
    peer: 'o',
    advert: advert({ ready: ready(5), freeSlots: 0 }),
  })
  const [ask] = pick([...cmds, ...t.tick(1)], 'send-steal')
  expect(ask).toBeDefined()
  return { o, t, ask }
}

/** Feeds `ev` (built by the module) keeping its cause, as the three transports do. */
function hear(n: Node, ev: SchedulerEvent | undefined): Command[] {
  if (ev === undefined) throw new Error('nothing heard')
  return n.feed(ev)
}

describe('what a peer hears', () => {
  test('a steal round trip: the victim answers with its reply, the thief runs what it hears', () => {
    const { o, t, ask } = stealing()
    const victim = hear(o, requestHeard(ask, 't', 7, carried, o.now))
    const batch = stealAnswer(victim, 't', 7)
    expect(batch.tasks.length).toBeGreaterThan(0)
    const [reply] = pick(victim, 'reply-steal')
    const heard = answerHeard(ask, { ...reply, batch: carried.batch(reply.batch, 'o', 't') }, t.now)
    expect(heard).toMatchObject({
      type: 'steal-granted',
      from: 'o',
      requestId: ask.requestId,
      cause: ask.cause,
    })
    const ran = pick(hear(t, heard), 'run-task')
    expect(ran.map((c) => c.task.index)).toEqual(batch.tasks.map((d) => d.index).slice(0, ran.length))
    expect(ran.length).toBeGreaterThan(0)
  })

  test('the victim hears the thief’s accepts (both simulators dropped them)', () => {
    const { ask } = stealing()
    const ev = requestHeard(ask, 't', 1, carried, 0)
    expect(ev).toMatchObject({ type: 'steal-requested', accepts: ask.accepts, free: ask.free, max: ask.max })
  })

  test('a lost grant: the thief hears steal-failed and the victim keeps its tasks (sim-net told only the victim, even of an empty grant)', () => {
    const { o, t, ask } = stealing()
    const victim = hear(o, requestHeard(ask, 't', 7, carried, o.now))
    const [reply] = pick(victim, 'reply-steal')
    const held = o.s.advert().ready.reduce((n, r) => n + r.count, 0)
    expect(requestLost(ask, 'stream broke', t.now)).toEqual({
      type: 'steal-failed',
      at: t.now,
      cause: ask.cause,
      from: 'o',
      requestId: ask.requestId,
      reason: 'stream broke',
    })
    hear(t, requestLost(ask, 'stream broke', t.now))
    expect(t.s.advert().running).toBe(0)
    const lost = answerLost(reply, o.now)
    expect(lost).toMatchObject({
      type: 'grant-failed',
      to: 't',
      requestId: 7,
      batch: reply.batch,
      cause: reply.cause,
    })
    hear(o, lost)
    expect(o.s.advert().ready.reduce((n, r) => n + r.count, 0)).toBe(held + reply.batch.tasks.length)
    // An empty grant moved nothing: its loss is heard by the thief alone.
    expect(answerLost({ ...reply, batch: { jobs: [], tasks: [] } }, 0)).toBeUndefined()
  })

  test('a grant that arrives after its request gave up is the thief’s all the same (only the daemon had this)', () => {
    const { o, t, ask } = stealing()
    const victim = hear(o, requestHeard(ask, 't', 7, carried, o.now))
    const [reply] = pick(victim, 'reply-steal')
    hear(t, requestLost(ask, 'timed out', t.now))
    const late = lateGrant('o', carried.batch(reply.batch, 'o', 't'), 'late-steal', t.now)
    expect(late).toMatchObject({ type: 'steal-granted', requestId: LATE_GRANT })
    expect(pick(hear(t, late), 'run-task').length).toBeGreaterThan(0)
  })

  test('results: a lost send is always heard, for every result sent (sim-net heard half of them)', () => {
    const c: CommandOf<'send-results'> = {
      type: 'send-results',
      cause: 'c1',
      to: 'o',
      results: [result('j', 0, 0, ok(), 't'), result('j', 1, 2, ok(), 't')],
    }
    expect(requestLost(c, 'lost', 5)).toEqual({
      type: 'results-send-failed',
      at: 5,
      cause: 'c1',
      to: 'o',
      tasks: [key('j', 0, 0), key('j', 1, 2)],
    })
  })

  test('a lost ack is the send’s loss: every result sent is resent (the simulator resent only the acked ones)', () => {
    const o = new Node({ self: 'o' })
    o.submit(spec('j', 'o'), inputs(3))
    const send: CommandOf<'send-results'> = {
      type: 'send-results',
      cause: 'c2',
      to: 'o',
      results: [result('j', 0, 0, ok(), 't'), result('j', 2, 0, ok(), 't')],
    }
    // The owner never handed these to t: it acks none, and the daemon answers an empty ack.
    const cmds = hear(o, requestHeard(send, 't', 0, carried, 0))
    expect(resultsAnswer(cmds, 't')).toEqual([])
    expect(answerHeard(send, undefined, 0)).toMatchObject({ type: 'results-acked', from: 'o', tasks: [] })
    const [ack] = pick(cmds, 'ack-results')
    expect(ack).toBeUndefined()
    expect(requestLost(send, 'broke', 0)).toMatchObject({ tasks: [key('j', 0), key('j', 2)] })
  })

  test('pushes: accepted is heard as nothing, refused by policy as push-refused, lost as push-failed with the push’s cause', () => {
    const batch = { jobs: [spec('j', 'o')], tasks: [] }
    const push: RequestCommand = { type: 'push-batch', cause: 'advert#4', to: 'h', batch }
    expect(answerHeard(push, undefined, 1)).toBeUndefined()
    const refuse: Command = { type: 'refuse-push', cause: 'x', to: 'o', reason: 'busy' }
    expect(pushAnswer([refuse], 'o')).toBe('busy')
    expect(pushAnswer([refuse], 'p')).toBeUndefined()
    expect(answerHeard(push, refuse, 1)).toEqual({
      type: 'push-refused',
      at: 1,
      cause: 'advert#4',
      to: 'h',
      batch,
      reason: 'busy',
    })
    // The daemon fed 'push' here; the push's own cause now reaches the story.
    expect(requestLost(push, 'reset', 2)).toEqual({
      type: 'push-failed',
      at: 2,
      cause: 'advert#4',
      to: 'h',
      batch,
      reason: 'reset',
    })
  })

  test('leases: an owner that answered nothing is heard as an empty answer; a lost lease or cancel as nothing', () => {
    const lease: RequestCommand = { type: 'send-lease', cause: 'c', to: 'o', holdings: held }
    expect(leaseAnswer([], 't')).toEqual({ drop: [], cancelledJobs: [] })
    expect(answerHeard(lease, undefined, 3)).toEqual({
      type: 'lease-answered',
      at: 3,
      cause: 'c',
      from: 'o',
      drop: [],
      cancelledJobs: [],
    })
    expect(requestLost(lease, 'x', 0)).toBeUndefined()
    expect(requestLost({ type: 'send-cancel', cause: 'c', to: 'h', job: 'j' }, 'x', 0)).toBeUndefined()
  })

  test('every event a request gives its receiver carries the sender’s cause (sim-net made up its own)', () => {
    const reqs: RequestCommand[] = [
      { type: 'send-lease', cause: 'k1', to: 'o', holdings: held },
      { type: 'send-cancel', cause: 'k2', to: 'h', job: 'j' },
      { type: 'send-results', cause: 'k3', to: 'o', results: [result('j', 0, 0, ok(), 't')] },
      { type: 'push-batch', cause: 'k4', to: 'h', batch: { jobs: [], tasks: [] } },
    ]
    for (const c of reqs)
      expect(requestHeard(c, 'me', 0, carried, 9)).toMatchObject({ cause: c.cause, at: 9 })
  })
})
