/**
 * The tiny scenario worked out by hand: nodes n0 and n1, one slot each,
 * speed 1, every link exactly 1 ms one way, no jitter, unlimited bandwidth;
 * four 100 ms tasks submitted on n0 at t = 10 ms. Lower bound: 400 / 2 = 200 ms.
 */
import { describe, expect, it } from 'vitest'
import { scenario as tiny } from '../../simulations/scenarios/tiny.ts'
import { run, withSpec } from './helpers.ts'

describe('a small scenario against hand-computed makespans', () => {
  it('gridnode: push two, no steal: 202 ms', () => {
    // t=0 both publish adverts; n0 learns n1 is idle at t=1.
    // t=10 n0 starts task 0 (10-110) and, keeping one task per own slot, pushes n1 the other
    //   two: min(surplus 2, 1 free slot x prefetch 2) = 2 (tasks 1 and 2).
    // t=11 n1 runs task 1 (11-111), then task 2 (111-211). t=110 n0 starts task 3 (110-210).
    // t=211 n1 sends the last result; n0 has it at 212: makespan 212 - 10 = 202 ms.
    const { record } = run(tiny, 'gridnode', 1)
    expect(record.outcome).toBe('ok')
    expect(record.lowerBound.ms).toBe(200)
    expect(record.metrics.makespanMs).toBe(202)
    expect(record.metrics.stealMessagesPerTask).toBe(0)
    expect(record.gantt?.map((g) => [g[0], g[2], g[3]])).toEqual([
      [0, 10, 110],
      [1, 11, 111],
      [0, 110, 210],
      [1, 111, 211],
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

describe("the simulator's executor", () => {
  it("runs beyond a node's slots wait for one: 20 ms tasks go two per slot, still one at a time", () => {
    // One node, one slot, four 20 ms tasks at t=10. Task 0 runs 10-30; then tasks average 20 ms
    // (under PIPELINE_TASK_MS, no idle peer) and the scheduler gives two per slot: task 1 runs
    // 30-50 while task 2 waits, starts at 50 as task 3 is given, and task 3 runs 70-90.
    const short = withSpec(tiny, (s) => ({
      ...s,
      jobs: s.jobs.map((j) => ({ ...j, costMs: { kind: 'fixed', value: 20 } })),
    }))
    const { record } = run(short, 'gridnode', 1, 1)
    expect(record.outcome).toBe('ok')
    expect(record.gantt?.map((g) => [g[0], g[2], g[3]])).toEqual([
      [0, 10, 30],
      [0, 30, 50],
      [0, 50, 70],
      [0, 70, 90],
    ])
    expect(record.metrics.makespanMs).toBe(80)
  })
})
