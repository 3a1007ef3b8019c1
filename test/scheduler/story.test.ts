import { describe, expect, test } from 'vitest'
import { Custody } from '../../src/scheduler/custody.ts'
import { buildJob } from '../../src/scheduler/job-table.ts'
import { Random } from '../../src/scheduler/random.ts'
import { Runtime, resolveSettings } from '../../src/scheduler/runtime.ts'
import { FinishedStories, JobStory, LEGAL_MOVES, legalMove } from '../../src/scheduler/story.ts'
import { memberReason } from '../../src/scheduler/why.ts'
import { advert, capacity, finish, inputs, Node, ok, pick, ready, result, spec, threw } from './helpers.ts'

/** An owner 'a' with one slot and a job of n tasks. */
function owner(n = 3, over: Parameters<typeof spec>[2] = {}) {
  const node = new Node({ self: 'a', capacity: capacity(1) })
  const cmds = node.submit(spec('j', 'a', over), inputs(n))
  return { node, cmds }
}

const moves = (node: Node, index: number) =>
  node.s.why('j', index).story.map((e) => `${e.from}>${e.to}@${e.attempt}${e.node ? `:${e.node}` : ''}`)

describe('legal moves', () => {
  test('final states have no way out; waiting never jumps to remote', () => {
    expect(LEGAL_MOVES.done).toEqual([])
    expect(LEGAL_MOVES.failed).toEqual([])
    expect(legalMove('waiting', 'remote')).toBe(false)
    expect(legalMove('doubt', 'doubt')).toBe(false)
    expect(legalMove('remote', 'remote')).toBe(true)
  })

  test('setState refuses an illegal move with the task and both states named', () => {
    const rt = new Runtime('a', resolveSettings({ self: 'a', capacity: capacity(), seed: 1 }), new Random(1))
    rt.begin(0, 'c')
    const c = new Custody(rt)
    const job = buildJob(spec('j', 'a'), inputs(1))
    const t = job.tasks.get(0)!
    expect(() => c.setState(t, 'remote', 'b')).toThrow(/j\/0: illegal move waiting → remote/)
    c.setState(t, 'local')
    c.setState(t, 'done')
    expect(() => c.setState(t, 'local')).toThrow(/illegal move done → local/)
  })
})

describe('a task’s story', () => {
  test('queued, stolen, stolen on, re-queued when its holder goes: every move with its time and cause', () => {
    const { node } = owner(3)
    // Task 0 runs here; 'b' steals the other two.
    node.now = 10
    const grant = node.feed({
      type: 'steal-requested',
      from: 'b',
      requestId: 1,
      free: { cpu: 4, gpu: 0, memoryMB: 8192 },
      max: 10,
      cause: 'steal:b#1',
    })
    const [k] = pick(grant, 'reply-steal')[0].batch.tasks.map((d) => d.index)
    // 'c' shows a lease for task 2 with a path through 'b': stolen on.
    node.feed({
      type: 'lease-received',
      at: 20,
      from: 'c',
      holdings: [{ job: 'j', index: k, attempt: 0, path: ['b', 'c'] }],
    })
    node.feed({ type: 'peer-gone', at: 30, peer: 'c', cause: 'peer-gone#7' })
    expect(moves(node, k)).toEqual([
      'waiting>local@0:a',
      'local>remote@0:b',
      'remote>remote@0:c',
      'remote>local@1:a',
    ])
    const story = node.s.why('j', k).story
    expect(story[1]).toMatchObject({ at: 10, cause: 'steal:b#1', note: 'stolen by b' })
    expect(story[2]).toMatchObject({ at: 20, fromNode: 'b', node: 'c' })
    expect(story[3]).toMatchObject({ at: 30, cause: 'peer-gone#7' })
    expect(story[3].note).toMatch(/holder c disconnected \(infrastructure failure 1 of 3\)/)
  })

  test('a final move says where it ran and how it ended; a retry says why', () => {
    const { node, cmds } = owner(1, { retries: 1 })
    const again = finish(node, pick(cmds, 'run-task')[0], threw())
    finish(node, pick(again, 'run-task')[0], ok('v', 12))
    const story = node.s.why('j', 0).story
    expect(story.map((e) => `${e.from}>${e.to}`)).toEqual(['waiting>local', 'local>local', 'local>done'])
    expect(story[1].note).toBe('threw: boom (retry 1 of 1)')
    expect(story[2]).toMatchObject({ node: 'a', note: 'ok in 12 ms', attempt: 1 })
    // The job finished: its story is still there.
    expect(node.s.why('j', 0)).toMatchObject({ known: 'finished', story })
  })

  test('a remote result ends the story on the node that ran it', () => {
    const { node } = owner(2)
    node.feed({
      type: 'steal-requested',
      from: 'b',
      requestId: 1,
      free: { cpu: 4, gpu: 0, memoryMB: 8192 },
      max: 10,
    })
    node.feed({ type: 'results-received', from: 'b', results: [result('j', 1, 0, ok('x', 5), 'b')] })
    const last = node.s.why('j', 1).story.at(-1)
    expect(last).toMatchObject({ from: 'remote', to: 'done', node: 'b', note: 'ok in 5 ms' })
  })

  test('unknown jobs and tasks say so', () => {
    const { node } = owner(1)
    expect(node.s.why('nope', 0).known).toBe('unknown')
    expect(node.s.why('j', 99).known).toBe('unknown')
  })
})

describe('why a task is not running', () => {
  test('queued here behind the tasks ahead of it, with each member’s reason', () => {
    const { node } = owner(4)
    node.feed({ type: 'advert-received', peer: 'big', advert: advert({ freeSlots: 0, running: 4 }) })
    node.feed({
      type: 'advert-received',
      peer: 'tiny',
      advert: advert({ slots: 1, memoryMB: 50, freeMemoryMB: 50 }),
    })
    node.feed({
      type: 'advert-received',
      peer: 'strict',
      advert: advert({
        accepts: {
          v: 1,
          foreign: true,
          reason: '',
          function: { all: true, peers: [] },
          command: { all: true, peers: [] },
          gpu: { all: true, peers: [] },
        },
        freeSlots: 0,
        running: 0,
      }),
    })
    const w = node.s.why('j', 3)
    expect(w).toMatchObject({ known: 'live', state: 'local', attempt: 0 })
    expect(w.queued).toEqual({ ahead: 2, others: 0 })
    const by = Object.fromEntries(w.members.map((m) => [m.peer, m]))
    expect(by.a).toMatchObject({ canTake: false, kind: 'busy' })
    expect(by.big.reason).toBe('busy: 0 free slots of 4, 4 running')
    expect(by.tiny).toMatchObject({ kind: 'memory', reason: 'needs 100 MB of memory; it has 50 MB' })
    expect(by.strict.kind).toBe('paused')
    // The running task is not asked about.
    expect(node.s.why('j', 0)).toMatchObject({ runningHere: true, members: [] })
  })

  test('policy, GPUs and a free peer, as memberReason words them', () => {
    const gpuJob = spec('g', 'a', {
      resources: { cpu: 1, gpu: 2, memoryMB: 0 },
      work: { kind: 'command', argv: ['x'], env: {}, stdoutMaxBytes: 1 },
    })
    expect(memberReason('p', gpuJob, advert({ gpus: 1, freeGpus: 1 }))).toMatchObject({
      kind: 'gpus',
      reason: 'needs 2 GPUs; it has 1',
    })
    const refuses = advert({
      gpus: 2,
      freeGpus: 2,
      accepts: {
        v: 1,
        foreign: true,
        reason: '',
        function: { all: true, peers: [] },
        command: { all: false, peers: [] },
        gpu: { all: true, peers: [] },
      },
    })
    expect(memberReason('p', gpuJob, refuses)).toMatchObject({ kind: 'policy', canTake: false })
    expect(memberReason('p', spec('j', 'a'), advert({ ready: ready(3) }))).toMatchObject({
      canTake: true,
      reason: 'could take it now: 4 free slots, 3 ready tasks queued there',
    })
  })
})

describe('story storage', () => {
  test('a full log counts what it drops; finished stories stay within their budget', () => {
    const s = new JobStory(2)
    for (let i = 0; i < 3; i++)
      s.add(i, { at: i, cause: 'c', attempt: 0, from: 'waiting', to: 'local' }, 'a', undefined)
    expect(s.size).toBe(2)
    expect(s.dropped).toBe(1)
    const kept = new FinishedStories(3)
    kept.keep('x', s)
    kept.keep('y', s)
    expect(kept.get('x')).toBeUndefined()
    expect(kept.get('y')).toBe(s)
  })
})

describe('story causes', () => {
  test('numbered and free-text causes come back exactly as they went in, past the log’s first growth', () => {
    const causes = [
      'run#1',
      'run#zz',
      'steal:b#1a',
      'peer-gone',
      '#5',
      'trailing#',
      'not-a-number#x-1',
      'leading-zero#01',
      'upper#A',
      'two#hash#3',
      'long#1234567890a',
      `submit:${'j'.repeat(40)}#${Number.MAX_SAFE_INTEGER.toString(36)}`,
    ]
    const s = new JobStory()
    const n = 600 // more moves than the columns' first size (256)
    const expected: string[] = []
    for (let i = 0; i < n; i++) {
      const cause = i < causes.length ? causes[i] : `run#${(i * 7919).toString(36)}`
      expected.push(cause)
      s.add(i, { at: i, cause, attempt: 0, from: 'waiting', to: 'local' }, 'a', undefined)
    }
    for (let i = 0; i < n; i++) expect(s.of(i)[0].cause).toBe(expected[i])
  })
})
