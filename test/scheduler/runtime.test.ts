import { describe, expect, test } from 'vitest'
import { assertNever, invariant, SchedulerInvariantError } from '../../src/scheduler/errors.ts'
import { Random } from '../../src/scheduler/random.ts'
import { Runtime, resolveSettings } from '../../src/scheduler/runtime.ts'
import { capacity, ok, result } from './helpers.ts'

describe('settings', () => {
  test('defaults', () => {
    expect(resolveSettings({ self: 'a', capacity: capacity(), seed: 1 })).toEqual({
      leaseIntervalMs: 1000,
      leaseTimeoutMs: 5000,
      restoreGraceMs: 5000,
      advertIntervalMs: 1000,
      advertMinIntervalMs: 100,
      stealBackoffMinMs: 20,
      stealBackoffMaxMs: 1000,
      prefetchFactor: 2,
      pipelineTaskMs: 50,
      targetBufferMs: 20,
      maxBatch: 1024,
      handOnMinMs: 1,
      maxHeldBytesPerOwner: 256 * 1024 * 1024,
      maxHeldBytes: 1024 * 1024 * 1024,
      resultResendMs: 2000,
      backupAfterFactor: 3,
      backupMinMs: 1000,
    })
  })

  test('restore grace follows the lease timeout unless given', () => {
    expect(
      resolveSettings({ self: 'a', capacity: capacity(), seed: 1, leaseTimeoutMs: 70 }).restoreGraceMs,
    ).toBe(70)
    expect(
      resolveSettings({ self: 'a', capacity: capacity(), seed: 1, leaseTimeoutMs: 70, restoreGraceMs: 9 })
        .restoreGraceMs,
    ).toBe(9)
  })
})

describe('Runtime', () => {
  test('time never goes back; persist is emitted once per flush with the current cause', () => {
    const rt = new Runtime('a', resolveSettings({ self: 'a', capacity: capacity(), seed: 1 }), new Random(1))
    rt.begin(10, 'x')
    rt.begin(5, 'y')
    expect(rt.now).toBe(10)
    rt.flushPersist()
    expect(rt.out).toEqual([])
    rt.persist(result('j', 0, 0, ok()))
    rt.persist(result('j', 1, 0, ok()))
    rt.flushPersist()
    expect(rt.out).toMatchObject([
      { type: 'persist-results', cause: 'y', results: [{ index: 0 }, { index: 1 }] },
    ])
  })
})

describe('errors', () => {
  test('invariant failures are named errors with a stable code', () => {
    expect(() => invariant(false, 'broken')).toThrow(SchedulerInvariantError)
    try {
      invariant(false, () => 'lazy')
    } catch (err) {
      expect(err).toMatchObject({
        name: 'SchedulerInvariantError',
        code: 'GN_SCHEDULER_INVARIANT',
        message: 'lazy',
      })
    }
    expect(() => assertNever('x' as never)).toThrow(/unexpected value/)
  })
})
