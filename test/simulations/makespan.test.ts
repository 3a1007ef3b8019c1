/**
 * The tiny scenario worked out by hand: nodes n0 and n1, one slot each,
 * speed 1, every link exactly 1 ms one way, no jitter, unlimited bandwidth;
 * four 100 ms tasks submitted on n0 at t = 10 ms. Lower bound: 400 / 2 = 200 ms.
 */
import { describe, expect, it } from 'vitest'
import { scenario as tiny } from '../../simulations/scenarios/tiny.ts'
import { run } from './helpers.ts'

describe('a small scenario against hand-computed makespans', () => {
  it('gridnode: push one, steal one: 204 ms', () => {
    // t=0 both publish adverts; n0 learns n1 is idle at t=1.
    // t=10 n0 starts task 0 (10-110) and pushes n1 one task (1 free slot x prefetch 1).
    // t=11 n1 runs task 1 (11-111). t=110 n0 starts task 2 (110-210).
    // t=111 n1 is idle with nothing queued and steals: request at n0 at 112, where task 3 waits
    //   and cannot start (n0's slot is busy), so it is granted; n1 gets it at 113 and runs it 113-213.
    // t=213 n1 sends the result; n0 has it at 214: makespan 214 - 10 = 204 ms.
    const { record } = run(tiny, 'gridnode', 1)
    expect(record.outcome).toBe('ok')
    expect(record.lowerBound.ms).toBe(200)
    expect(record.metrics.makespanMs).toBe(204)
    expect(record.gantt?.map((g) => [g[0], g[2], g[3]])).toEqual([
      [0, 10, 110],
      [1, 11, 111],
      [0, 110, 210],
      [1, 113, 213],
    ])
  })

  it('central queue: every task through the broker on n0: 204 ms', () => {
    // Both workers' credits are parked at the broker before t=10. At t=10 the broker hands n0
    // (local) task 0 at once and sends n1 task 1, which arrives at 11 (11-111). n0 takes task 2
    // after its ack at 110 (110-210). n1's ack reaches the broker at 112, task 3 reaches n1 at 113
    // (113-213), its result reaches the broker at 214 and is forwarded to the owner (n0) at once.
    const { record } = run(tiny, 'central', 1)
    expect(record.outcome).toBe('ok')
    expect(record.metrics.makespanMs).toBe(204)
  })

  it('random push: round robin at submit: 202 ms', () => {
    // Tasks 0 and 2 stay on n0 (10-110, 110-210); 1 and 3 go to n1 in one push that arrives at 11
    // (11-111, 111-211); the last result reaches n0 at 212: makespan 202 ms.
    const { record } = run(tiny, 'random-push', 1)
    expect(record.outcome).toBe('ok')
    expect(record.metrics.makespanMs).toBe(202)
    expect(record.metrics.schedulingMessagesPerTask).toBe(0.25)
  })
})
