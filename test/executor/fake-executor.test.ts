import { describe, expect, test } from 'vitest'
import { createFakeExecutor } from '../fakes/fake-executor.ts'
import * as basic from './fixtures/basic.ts'
import { executorSuite, makeJob, makeTask, okValue } from './suite.ts'

const BASIC = 'b'.repeat(64)

executorSuite('fake executor', async (slots) => {
  const executor = createFakeExecutor({ modules: { [BASIC]: basic }, slots })
  return { executor, basic: BASIC, close: () => executor.close() }
})

describe('fake executor extras', () => {
  test('records runs, and an override fakes an outcome', async () => {
    const executor = createFakeExecutor({
      modules: { [BASIC]: basic },
      override: (_job, task) =>
        task.index === 1 ? { status: 'crashed', error: 'worker crashed (fake)', durationMs: 0 } : undefined,
    })
    const job = makeJob({ kind: 'function', bundle: BASIC, exportName: 'echo' })
    expect(okValue(await executor.run(job, makeTask(job, 0, 'a'), { gpus: [0] }))).toBe('a')
    expect(await executor.run(job, makeTask(job, 1, 'b'), { gpus: [] })).toMatchObject({ status: 'crashed' })
    expect(executor.runs.map((r) => [r.task.index, r.gpus, r.outcome?.status])).toEqual([
      [0, [0], 'ok'],
      [1, [], 'crashed'],
    ])
  })

  test('commands go to the handler given, or are rejected', async () => {
    const job = makeJob({ kind: 'command', argv: ['echo', '{}'], env: {}, stdoutMaxBytes: 100 })
    const none = createFakeExecutor()
    expect(await none.run(job, makeTask(job, 0, 'x'), { gpus: [] })).toMatchObject({ status: 'rejected' })
    const some = createFakeExecutor({
      command: (argv, input) => ({
        status: 'ok',
        value: new TextEncoder().encode(`${argv[0]} ${input}`),
        durationMs: 1,
      }),
    })
    const outcome = await some.run(job, makeTask(job, 0, 'x'), { gpus: [] })
    expect(outcome.status === 'ok' && new TextDecoder().decode(outcome.value)).toBe('echo x')
  })
})
