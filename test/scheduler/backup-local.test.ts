/**
 * A straggler running on the owner itself gets a backup copy on an idle peer
 * (it used to get none: only tasks held elsewhere were backed up), and the
 * job's counts say how many backups it started.
 */
import { describe, expect, it } from 'vitest'
import { advert, capacity, finish, inputs, Node, ok, pick, result, spec } from './helpers.ts'

describe('tail backups of tasks running on the owner', () => {
  it('pushes a copy of a straggler running here to an idle peer; its lease holds and its result wins', () => {
    const a = new Node({ capacity: capacity(1) })
    let cmds = a.submit(spec('j', 'a'), inputs(4))
    for (let i = 0; i < 3; i++) cmds = finish(a, pick(cmds, 'run-task')[0], ok('v', 60), a.now + 60)
    const slow = pick(cmds, 'run-task')[0]
    expect(slow.task.index).toBe(3)
    a.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 2 }) })
    const later = a.runUntil(a.now + 1500)
    const pushes = pick(later, 'push-batch')
    expect(pushes.map((p) => [p.to, p.batch.tasks.map((d) => `${d.index}@${d.attempt}`)])).toEqual([
      ['b', [`3@${slow.task.attempt}`]],
    ])
    const lease = a.feed({
      type: 'lease-received',
      from: 'b',
      holdings: [{ job: 'j', index: 3, attempt: slow.task.attempt }],
    })
    expect(pick(lease, 'answer-lease')[0].drop).toEqual([])
    const won = a.feed({
      type: 'results-received',
      from: 'b',
      results: [result('j', 3, slow.task.attempt, ok('fast'))],
    })
    expect(pick(won, 'cancel-task').map((c) => c.task.index)).toEqual([3])
    expect(pick(won, 'job-finished')).toMatchObject([{ job: 'j', status: 'done' }])
    expect(a.s.jobProgress('j')).toMatchObject({ backups: 1 })
  })

  it('does not back up a task running here when no peer is idle', () => {
    const a = new Node({ capacity: capacity(1) })
    let cmds = a.submit(spec('j', 'a'), inputs(4))
    for (let i = 0; i < 3; i++) cmds = finish(a, pick(cmds, 'run-task')[0], ok('v', 60), a.now + 60)
    a.feed({ type: 'advert-received', peer: 'b', advert: advert({ freeSlots: 0, running: 4 }) })
    expect(pick(a.runUntil(a.now + 5000), 'push-batch')).toEqual([])
  })
})
