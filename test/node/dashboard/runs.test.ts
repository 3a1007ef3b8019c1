/**
 * The dashboard's stream of task runs (Activity, from scheduler steps): a run of another owner's
 * task enters when it ends here, a run of our own with its result, wherever it ran; each is timed
 * from its end back by its own run time.
 */
import { describe, expect, it } from 'vitest'
import { Activity } from '../../../src/node/dashboard/activity.ts'
import type { Command, SchedulerEvent } from '../../../src/scheduler/types.ts'

const SELF = 'peer-self'
const OTHER = 'peer-other'

const runTask = (owner: string, job: string, index: number) =>
  ({
    type: 'run-task',
    cause: 'c',
    job: { id: job, owner },
    task: { job, index, attempt: 1 },
  }) as unknown as Command
const tick = (at: number) => ({ type: 'tick', at, cause: 'timer' }) as SchedulerEvent
const finished = (job: string, index: number, at: number, ok = true) =>
  ({
    type: 'task-finished',
    at,
    cause: 'run',
    task: { job, index, attempt: 1 },
    outcome: ok
      ? { status: 'ok', value: new Uint8Array(), durationMs: 5 }
      : { status: 'threw', error: 'x', durationMs: 5 },
  }) as SchedulerEvent
const persisted = (job: string, index: number, ranOn: string, ms: number) =>
  ({
    type: 'persist-results',
    cause: 'c',
    results: [
      { job, index, attempt: 1, ranOn, outcome: { status: 'ok', value: new Uint8Array(), durationMs: ms } },
    ],
  }) as unknown as Command

describe('the run stream', () => {
  it("another owner's run enters as it ends here; our own runs come from their results", () => {
    const a = new Activity(SELF)
    a.step(tick(100), [runTask(OTHER, 'theirs', 0), runTask(SELF, 'ours', 0)])
    a.step(finished('theirs', 0, 130, false), [])
    a.step(finished('ours', 0, 140), [persisted('ours', 0, SELF, 25)])
    a.step(tick(150), [persisted('ours', 1, OTHER, 10)])
    const { runs, seq } = a.runsSince(0, 10)
    expect(seq).toBe(3)
    expect(runs).toEqual([
      { job: 'theirs', index: 0, node: SELF, start: 125, end: 130, ok: false },
      { job: 'ours', index: 0, node: SELF, start: 115, end: 140, ok: true },
      { job: 'ours', index: 1, node: OTHER, start: 140, end: 150, ok: true },
    ])
  })

  it('runs that ended together (tasks-finished) enter as each would alone', () => {
    const a = new Activity(SELF)
    a.step(tick(100), [runTask(OTHER, 'theirs', 0), runTask(OTHER, 'theirs', 1)])
    const [one, two] = [finished('theirs', 0, 130), finished('theirs', 1, 130, false)] as Array<
      Extract<SchedulerEvent, { type: 'task-finished' }>
    >
    a.step({ type: 'tasks-finished', at: 130, cause: 'run', finished: [one, two] }, [])
    expect(a.runsSince(0, 10).runs).toEqual([
      { job: 'theirs', index: 0, node: SELF, start: 125, end: 130, ok: true },
      { job: 'theirs', index: 1, node: SELF, start: 125, end: 130, ok: false },
    ])
  })

  it('a task of ours that ends here without a result (cancelled, re-queued) adds no run', () => {
    const a = new Activity(SELF)
    a.step(tick(0), [runTask(SELF, 'ours', 3)])
    a.step(finished('ours', 3, 20), [])
    expect(a.runsSince(0, 10).runs).toEqual([])
  })
})
