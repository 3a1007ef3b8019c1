import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { MAX_COMMAND_OUTPUT_BYTES } from '../../src/domain/types.ts'
import { type CommandResult, type CommandTask, runCommand } from '../../src/executor/command.ts'
import { decodeValue, encodeValue } from '../../src/executor/values.ts'
import type { TaskOutcome } from '../../src/scheduler/types.ts'

let dir: string
let n = 0

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gridnode-command-'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function cmd(argv: string[], input: unknown = undefined, over: Partial<CommandTask> = {}): CommandTask {
  return {
    argv,
    env: {},
    stdoutMaxBytes: 10_000,
    input: encodeValue(input),
    timeoutMs: 0,
    gpus: [],
    gpuTask: false,
    scratchDir: join(dir, `task-${++n}`),
    ...over,
  }
}

function result(o: TaskOutcome): CommandResult {
  if (o.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(o)}`)
  return decodeValue(o.value) as CommandResult
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  )
}

describe('runCommand', () => {
  test('{} in arguments becomes the input: a string as is, anything else as JSON; no shell', async () => {
    expect(result(await runCommand(cmd(['echo', 'x={}', '{}{}'], 'a b')))).toEqual({
      exitCode: 0,
      stdout: 'x=a b a ba b\n',
      stderr: '',
      stdoutTruncated: false,
      stderrTruncated: false,
    })
    expect(result(await runCommand(cmd(['echo', '{}'], { k: [1, 2] }))).stdout).toBe('{"k":[1,2]}\n')
    expect(result(await runCommand(cmd(['echo', '$HOME;', '`id`'], 0))).stdout).toBe('$HOME; `id`\n')
  })

  test('a non-zero exit: threw, with the code and the end of stderr', async () => {
    const script = 'for i in $(seq 1 30); do echo "line $i" >&2; done; exit 3'
    const outcome = await runCommand(cmd(['sh', '-c', script]))
    expect(outcome.status).toBe('threw')
    const error = (outcome as { error: string }).error
    expect(error.split('\n')[0]).toBe('command exited with code 3')
    expect(error).toContain('--- last 20 lines of stderr ---\nline 11\n')
    expect(error.endsWith('line 30')).toBe(true)
    const quiet = await runCommand(cmd(['sh', '-c', 'echo only stdout; exit 1']))
    expect(quiet).toMatchObject({
      status: 'threw',
      error: 'command exited with code 1\n--- stdout ---\nonly stdout',
    })
  })

  test('killed by a signal: threw, naming it', async () => {
    const outcome = await runCommand(cmd(['sh', '-c', 'kill -SEGV $$']))
    expect(outcome).toMatchObject({ status: 'threw', error: 'command was killed by signal SIGSEGV' })
  })

  test('a missing or non-executable program: rejected', async () => {
    expect(await runCommand(cmd(['gridnode-no-such-program']))).toMatchObject({
      status: 'rejected',
      error: 'command not found: gridnode-no-such-program',
    })
    const plain = join(dir, 'not-executable.sh')
    await writeFile(plain, 'echo hi\n', { mode: 0o644 })
    expect(await runCommand(cmd([plain]))).toMatchObject({
      status: 'rejected',
      error: `command is not executable: ${plain}`,
    })
    expect(await runCommand(cmd([]))).toMatchObject({ status: 'rejected' })
    expect(await runCommand(cmd(['echo', 'nul\0byte']))).toMatchObject({ status: 'rejected' })
  })

  test('past its time limit the process group is killed: timeout', async () => {
    const t0 = performance.now()
    // The shell's child sleeps too: both must go.
    const outcome = await runCommand(cmd(['sh', '-c', 'sleep 30; echo never'], undefined, { timeoutMs: 200 }))
    expect(outcome).toMatchObject({ status: 'timeout', error: 'command timed out after 200 ms' })
    expect(performance.now() - t0).toBeLessThan(1500)
  })

  test('a process that ignores SIGTERM gets SIGKILL 2 s later', async () => {
    const t0 = performance.now()
    const script = "trap '' TERM; echo ready; while :; do sleep 0.05; done"
    const outcome = await runCommand(cmd(['sh', '-c', script], undefined, { timeoutMs: 100 }))
    expect(outcome.status).toBe('timeout')
    const elapsed = performance.now() - t0
    expect(elapsed).toBeGreaterThanOrEqual(2000)
    expect(elapsed).toBeLessThan(4000)
  })

  test('GPU tasks get CUDA_VISIBLE_DEVICES and CUDA_DEVICE_ORDER; job env is passed', async () => {
    const show = ['sh', '-c', 'echo "$CUDA_VISIBLE_DEVICES|$CUDA_DEVICE_ORDER|$GREETING"']
    const gpu = await runCommand(
      cmd(show, undefined, { gpus: [1, 3], gpuTask: true, env: { GREETING: 'hi' } }),
    )
    expect(result(gpu).stdout).toBe('1,3|PCI_BUS_ID|hi\n')
    const cpu = await runCommand(cmd(show, undefined, { env: { CUDA_VISIBLE_DEVICES: 'mine' } }))
    expect(result(cpu).stdout).toBe('mine||\n')
  })

  test('it runs in a fresh scratch dir, removed afterwards whatever happened', async () => {
    const scratchDir = join(dir, 'scratch-here')
    const outcome = await runCommand(
      cmd(['sh', '-c', 'pwd; ls -A; touch left-behind'], undefined, { scratchDir }),
    )
    expect(result(outcome).stdout).toBe(`${scratchDir}\n`)
    expect(await exists(scratchDir)).toBe(false)
    await runCommand(cmd(['sh', '-c', 'touch x; exit 1'], undefined, { scratchDir }))
    expect(await exists(scratchDir)).toBe(false)
  })

  test('output is capped: stdout keeps its start, stderr its end, both marked', async () => {
    const script = 'seq 1 10000; seq 1 10000 >&2'
    const r = result(await runCommand(cmd(['sh', '-c', script], undefined, { stdoutMaxBytes: 100 })))
    expect(r.stdout).toHaveLength(100)
    expect(r.stdout.startsWith('1\n2\n3\n')).toBe(true)
    expect(r.stderr).toHaveLength(100)
    expect(r.stderr.endsWith('9999\n10000\n')).toBe(true)
    expect([r.stdoutTruncated, r.stderrTruncated]).toEqual([true, true])
  })

  test('a job asking for a bigger cap than a node keeps gets MAX_COMMAND_OUTPUT_BYTES', async () => {
    // A job handed over by another member says how much output to hold in this daemon's memory:
    // 2^31 bytes of stdout were held whole, and turning them into a string crashed the daemon.
    const script = `head -c ${MAX_COMMAND_OUTPUT_BYTES + 5 * 1024 * 1024} /dev/zero | tr '\\0' a; head -c ${MAX_COMMAND_OUTPUT_BYTES + 1024} /dev/zero | tr '\\0' b >&2`
    const r = result(await runCommand(cmd(['sh', '-c', script], undefined, { stdoutMaxBytes: 2 ** 31 })))
    expect(r.stdout).toHaveLength(MAX_COMMAND_OUTPUT_BYTES)
    expect(r.stderr).toHaveLength(MAX_COMMAND_OUTPUT_BYTES)
    expect([r.stdoutTruncated, r.stderrTruncated]).toEqual([true, true])
  })

  test('processes it left in the background do not hold the task', async () => {
    const t0 = performance.now()
    const outcome = await runCommand(cmd(['sh', '-c', 'sleep 30 & echo started']))
    expect(result(outcome).stdout).toBe('started\n')
    expect(performance.now() - t0).toBeLessThan(1500)
  })

  test('an AbortSignal stops it: rejected cancelled', async () => {
    const controller = new AbortController()
    setTimeout(() => controller.abort(), 100)
    const t0 = performance.now()
    const outcome = await runCommand(cmd(['sleep', '30'], undefined, { signal: controller.signal }))
    expect(outcome).toMatchObject({ status: 'rejected', error: 'cancelled' })
    expect(performance.now() - t0).toBeLessThan(1500)
  })
})
