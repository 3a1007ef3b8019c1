/**
 * Behaviours every Executor shares: the local executor (worker threads) and
 * the in-memory fake both pass this suite.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { Executor } from '../../src/executor/executor.ts'
import { probeSandbox } from '../../src/executor/sandbox/probe.ts'
import { decodeValue, encodeValue } from '../../src/executor/values.ts'
import type { JobSpec, TaskDescriptor, TaskOutcome, WorkSpec } from '../../src/scheduler/types.ts'

export interface SuiteContext {
  /** Runs at most `slots` tasks at once. */
  executor: Executor
  /** Bundle hash under which test/executor/fixtures/basic.ts is available. */
  basic: string
  close(): Promise<void>
}

export const SUITE_SLOTS = 2

/** Whether the bwrap sandbox works on this machine (and why not), probed in a directory of its own. */
export async function sandboxHere(): Promise<{ available: boolean; reason: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'gridnode-sandbox-probe-'))
  try {
    const probe = await probeSandbox('auto', { baseDir: join(dir, 'sandbox') })
    await probe.host?.close()
    return { available: probe.status.available, reason: probe.status.reason }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

let jobCounter = 0

export function makeJob(work: WorkSpec, over: Partial<JobSpec> = {}): JobSpec {
  return {
    id: `job-${++jobCounter}`,
    owner: 'peer-a',
    work,
    resources: { cpu: 1, gpu: 0, memoryMB: 0 },
    timeoutMs: 0,
    maxAttempts: 3,
    retries: 0,
    ...over,
  }
}

export function makeTask(job: JobSpec, index: number, input: unknown, deps: unknown[] = []): TaskDescriptor {
  return {
    job: job.id,
    index,
    attempt: 1,
    input: encodeValue(input),
    depValues: deps.map((d) => encodeValue(d)),
  }
}

export function okValue(outcome: TaskOutcome): unknown {
  if (outcome.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(outcome)}`)
  return decodeValue(outcome.value)
}

export function executorSuite(name: string, make: (slots: number) => Promise<SuiteContext>): void {
  describe(`${name} (shared executor suite)`, () => {
    let ctx: SuiteContext
    const fn = (exportName: string, call?: 'map' | 'apply'): WorkSpec =>
      call === undefined
        ? { kind: 'function', bundle: ctx.basic, exportName }
        : { kind: 'function', bundle: ctx.basic, exportName, call }
    const run = (job: JobSpec, task: TaskDescriptor, signal?: AbortSignal) =>
      ctx.executor.run(job, task, { gpus: [], signal })

    beforeAll(async () => {
      ctx = await make(SUITE_SLOTS)
    })
    afterAll(async () => {
      await ctx?.close()
    })

    test('ok: structured values round trip', async () => {
      const value = {
        text: 'héllo',
        n: 1.5,
        big: 2n ** 70n,
        when: new Date('2026-11-25T10:00:00Z'),
        map: new Map<unknown, unknown>([
          ['a', 1],
          [2, new Set(['x', 'y'])],
        ]),
        bytes: new Uint8Array([1, 2, 3]),
        floats: new Float64Array([0.5, -1]),
        buffer: new Uint8Array([9, 8]).buffer,
        re: /ab+c/gi,
        nested: [null, true, [{ deep: undefined }]],
      }
      const job = makeJob(fn('echo'))
      const outcome = await run(job, makeTask(job, 0, value))
      const back = okValue(outcome) as typeof value
      expect(back).toEqual(value)
      expect(back.map).toBeInstanceOf(Map)
      expect(back.when).toBeInstanceOf(Date)
      expect(typeof back.big).toBe('bigint')
      expect(back.floats).toBeInstanceOf(Float64Array)
      expect(outcome.durationMs).toBeGreaterThanOrEqual(0)
    })

    test("call 'map' passes the input then the dependencies' values", async () => {
      const job = makeJob(fn('sum'))
      expect(okValue(await run(job, makeTask(job, 0, 1, [2, 3])))).toBe(6)
    })

    test("call 'apply' spreads the input and replaces $gridnodeDep markers", async () => {
      const job = makeJob(fn('describe', 'apply'))
      const task = makeTask(job, 0, [1, { $gridnodeDep: 1 }, { $gridnodeDep: 0 }], ['a', 'b'])
      expect(okValue(await run(job, task))).toBe('[1,"b","a"]')
      const bad = makeTask(job, 1, [{ $gridnodeDep: 5 }], ['a'])
      const outcome = await run(job, bad)
      expect(outcome.status).toBe('rejected')
    })

    test('noop work ends ok with an empty value', async () => {
      const job = makeJob({ kind: 'noop' })
      const outcome = await run(job, makeTask(job, 0, undefined))
      expect(outcome.status).toBe('ok')
      expect(okValue(outcome)).toBeUndefined()
    })

    test('a thrown error becomes threw with its message and stack', async () => {
      const job = makeJob(fn('fail'))
      const outcome = await run(job, makeTask(job, 0, 'boom'))
      expect(outcome.status).toBe('threw')
      if (outcome.status !== 'threw') return
      expect(outcome.error).toBe('TypeError: boom')
      expect(outcome.stack).toContain('boom')
      expect(outcome.stack).toContain('basic.ts')
    })

    test('a rejected promise becomes threw', async () => {
      const job = makeJob(fn('failLater'))
      const outcome = await run(job, makeTask(job, 0, 'later'))
      expect(outcome).toMatchObject({ status: 'threw', error: 'RangeError: later' })
    })

    test('a missing export is rejected, naming the exports there are', async () => {
      const job = makeJob(fn('score'))
      const outcome = await run(job, makeTask(job, 0, 1))
      expect(outcome.status).toBe('rejected')
      if (outcome.status !== 'rejected') return
      expect(outcome.error).toContain(`module ${ctx.basic.slice(0, 12)} has no export "score" (exports: `)
      expect(outcome.error).toContain('echo')
    })

    test('an export that is not a function is rejected', async () => {
      const job = makeJob(fn('notAFunction'))
      const outcome = await run(job, makeTask(job, 0, 1))
      expect(outcome).toMatchObject({ status: 'rejected' })
      expect((outcome as { error: string }).error).toContain('is not a function (it is a number)')
    })

    test('an unknown bundle is rejected', async () => {
      const job = makeJob({ kind: 'function', bundle: 'e'.repeat(64), exportName: 'echo' })
      const outcome = await run(job, makeTask(job, 0, 1))
      expect(outcome.status).toBe('rejected')
    })

    test('input bytes that are not a value are rejected', async () => {
      const job = makeJob(fn('echo'))
      const task = { ...makeTask(job, 0, 1), input: new Uint8Array([1, 2, 3, 4, 5]) }
      const outcome = await run(job, task)
      expect(outcome.status).toBe('rejected')
      expect((outcome as { error: string }).error).toContain('cannot decode')
    })

    test('a task past its time limit ends timeout', async () => {
      const job = makeJob(fn('sleep'), { timeoutMs: 100 })
      const t0 = performance.now()
      const outcome = await run(job, makeTask(job, 0, 5000))
      expect(outcome.status).toBe('timeout')
      expect(performance.now() - t0).toBeLessThan(2000)
      // The executor goes on working.
      const again = makeJob(fn('echo'))
      expect(okValue(await run(again, makeTask(again, 0, 'still here')))).toBe('still here')
    })

    test('runs `slots` tasks at once and queues the rest', async () => {
      const job = makeJob(fn('sleep'))
      const t0 = performance.now()
      const outcomes = await Promise.all([0, 1, 2, 3].map((i) => run(job, makeTask(job, i, 150))))
      const elapsed = performance.now() - t0
      expect(outcomes.map((o) => o.status)).toEqual(['ok', 'ok', 'ok', 'ok'])
      expect(elapsed).toBeGreaterThanOrEqual(280)
      expect(elapsed).toBeLessThan(1500)
    })

    test('many small tasks all come back, each with its own value', async () => {
      const job = makeJob(fn('echo'))
      const outcomes = await Promise.all(
        Array.from({ length: 500 }, (_, i) => run(job, makeTask(job, i, { i }))),
      )
      expect(outcomes.map(okValue)).toEqual(Array.from({ length: 500 }, (_, i) => ({ i })))
    })

    test('an AbortSignal cancels a running task, a queued one, and one aborted before', async () => {
      const job = makeJob(fn('sleep'))
      const pre = new AbortController()
      pre.abort()
      expect(await run(job, makeTask(job, 0, 10), pre.signal)).toMatchObject({
        status: 'rejected',
        error: 'cancelled',
      })
      const controllers = [0, 1, 2].map(() => new AbortController())
      const t0 = performance.now()
      // Two run (slots = 2), the third waits; cancel all three.
      const pending = controllers.map((c, i) => run(job, makeTask(job, i + 1, 5000), c.signal))
      await new Promise((resolve) => setTimeout(resolve, 100))
      for (const c of controllers) c.abort()
      const outcomes = await Promise.all(pending)
      expect(outcomes.map((o) => [o.status, (o as { error?: string }).error])).toEqual([
        ['rejected', 'cancelled'],
        ['rejected', 'cancelled'],
        ['rejected', 'cancelled'],
      ])
      expect(performance.now() - t0).toBeLessThan(2000)
      const again = makeJob(fn('echo'))
      expect(okValue(await run(again, makeTask(again, 0, 1)))).toBe(1)
    })
  })
}
