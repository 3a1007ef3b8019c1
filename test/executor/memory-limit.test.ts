/**
 * --memory is a real limit for command tasks run outside the sandbox too
 * (RLIMIT_DATA through prlimit, as the sandbox sets it): a 500 MB allocation
 * under a 300 MB limit fails, the same one without a limit succeeds.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { type CommandTask, runCommand } from '../../src/executor/command.ts'
import { encodeValue } from '../../src/executor/values.ts'

let dir: string
let n = 0
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gridnode-memory-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function cmd(argv: string[], memoryMB?: number): CommandTask {
  return {
    argv,
    env: {},
    stdoutMaxBytes: 10_000,
    input: encodeValue(''),
    timeoutMs: 0,
    gpus: [],
    gpuTask: false,
    scratchDir: join(dir, `task-${++n}`),
    memoryMB,
  }
}

const ALLOC_500MB = [process.execPath, '-e', 'Buffer.alloc(500e6).fill(1); console.log("allocated")']

describe('a command task with memoryMB, outside the sandbox', () => {
  test('cannot allocate past the limit', async () => {
    const outcome = await runCommand(cmd(ALLOC_500MB, 300))
    expect(outcome.status).toBe('threw')
    expect((outcome as { error: string }).error).toMatch(/Array buffer allocation failed|out of memory/i)
  })

  test('allocates freely without one', async () => {
    expect((await runCommand(cmd(ALLOC_500MB))).status).toBe('ok')
  })

  test('a missing command under a limit is still "command not found"', async () => {
    const outcome = await runCommand(cmd([join(dir, 'no-such-program')], 300))
    expect(outcome).toMatchObject({ status: 'rejected', error: expect.stringMatching(/^command not found/) })
  })
})
