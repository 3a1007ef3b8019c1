/**
 * The working directory rule, for both kinds of task (issue 17 bug 11, issue 14): a command and
 * a function task with files each run in a fresh directory of their own holding their staged
 * inputs; what they write there stays out of the daemon's cwd, outputs are collected from it,
 * and it is gone afterwards.
 */
import { existsSync } from 'node:fs'
import { chmod, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BlobStore } from '../../src/executor/blob-store.ts'
import { bundleModule } from '../../src/executor/bundle.ts'
import { createLocalExecutor, type Executor } from '../../src/executor/executor.ts'
import type { TaskFiles } from '../../src/executor/files.ts'
import { probeSandbox } from '../../src/executor/sandbox/probe.ts'
import { freshDaemonCwd, scratchName } from '../../src/executor/scratch.ts'
import type { JobSpec, TaskDescriptor, TaskOutcome } from '../../src/scheduler/types.ts'
import { makeJob, makeTask, okValue, sandboxHere } from './suite.ts'

const WORKDIR_URL = new URL('./fixtures/workdir.ts', import.meta.url)

describe('working directory rule', () => {
  let dataDir: string
  let blobs: BlobStore
  let executor: Executor
  let bundle: string
  let files: TaskFiles

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gridnode-workdir-'))
    blobs = await BlobStore.open(dataDir)
    const b = await bundleModule(WORKDIR_URL)
    await blobs.put(b.bytes)
    bundle = b.hash
    const src = join(dataDir, 'input-src.txt')
    await writeFile(src, 'scene-42')
    const { sha256 } = await blobs.importFile(src)
    files = {
      inputs: [{ path: 'input.txt', source: blobs.pathOf(sha256), mode: 0o644 }],
      outputs: { globs: ['out-*.txt'], maxBytes: 0 },
    }
    executor = createLocalExecutor({ dataDir, slots: 2, blobs, fetchBlob: async () => new Uint8Array() })
  })
  afterAll(async () => {
    await executor?.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  const scratchOf = (task: TaskDescriptor) => join(dataDir, 'scratch', scratchName(task))

  async function outputText(outcome: TaskOutcome, name: string): Promise<string> {
    if (outcome.status !== 'ok') throw new Error(JSON.stringify(outcome))
    const out = outcome.outputs?.find((o) => o.name === name)
    if (out === undefined) throw new Error(`no output ${name} in ${JSON.stringify(outcome.outputs)}`)
    return readFile(blobs.pathOf(out.sha256), 'utf8')
  }

  function expectNoLeak(): void {
    for (const n of ['stray.log', 'out-a.txt', 'out-b.txt', 'out-cmd.txt', 'input.txt'])
      expect(existsSync(join(process.cwd(), n)), `${n} in the daemon's cwd`).toBe(false)
  }

  test('a function task runs in a fresh dir holding its staged files; outputs come back; the dir goes', async () => {
    const job: JobSpec = makeJob({ kind: 'function', bundle, exportName: 'inspect' })
    const tasks = ['a', 'b'].map((name, i) => makeTask(job, i, name))
    const outcomes = await Promise.all(tasks.map((t) => executor.run(job, t, { gpus: [], files })))
    for (const [i, name] of ['a', 'b'].entries()) {
      const seen = okValue(outcomes[i]) as { cwd: string; entries: string[]; input: string }
      expect(seen.cwd).toBe(scratchOf(tasks[i]))
      // Fresh: only its own staged input, nothing of the other task's.
      expect(seen.entries).toEqual(['input.txt'])
      expect(seen.input).toBe('scene-42')
      expect(await outputText(outcomes[i], `out-${name}.txt`)).toBe(`${name}:scene-42`)
      // Only what matches the globs comes back (not stray.log, not the input).
      expect((outcomes[i] as { outputs?: unknown[] }).outputs).toHaveLength(1)
    }
    expect(await readdir(join(dataDir, 'scratch'))).toEqual([])
    expectNoLeak()
  })

  test('a command follows the same rule', async () => {
    const job = makeJob({
      kind: 'command',
      argv: ['sh', '-c', 'pwd; ls -A; printf "cmd:%s" "$(cat input.txt)" > out-cmd.txt; echo x > stray.log'],
      env: {},
      stdoutMaxBytes: 1000,
    })
    const task = makeTask(job, 0, undefined)
    const outcome = await executor.run(job, task, { gpus: [], files })
    const { stdout } = okValue(outcome) as { stdout: string }
    expect(stdout.trim().split('\n')).toEqual([scratchOf(task), 'input.txt'])
    expect(await outputText(outcome, 'out-cmd.txt')).toBe('cmd:scene-42')
    expect(await readdir(join(dataDir, 'scratch'))).toEqual([])
    expectNoLeak()
  })

  test('a function task that throws leaves no dir behind', async () => {
    const job: JobSpec = makeJob({ kind: 'function', bundle, exportName: 'inspect' })
    const noInput: TaskFiles = { inputs: [], outputs: files.outputs }
    // No input.txt staged: the read throws.
    const threw = await executor.run(job, makeTask(job, 0, 'a'), { gpus: [], files: noInput })
    expect(threw).toMatchObject({ status: 'threw', error: expect.stringMatching(/ENOENT.*input\.txt/) })
    expect(await readdir(join(dataDir, 'scratch'))).toEqual([])
  })

  test('a function task past its time limit, or cancelled, leaves no dir behind', async () => {
    const timed: JobSpec = makeJob({ kind: 'function', bundle, exportName: 'stall' }, { timeoutMs: 300 })
    const late = await executor.run(timed, makeTask(timed, 0, 10_000), { gpus: [], files })
    expect(late.status).toBe('timeout')
    expect(await readdir(join(dataDir, 'scratch'))).toEqual([])
    const job: JobSpec = makeJob({ kind: 'function', bundle, exportName: 'stall' })
    const abort = new AbortController()
    const running = executor.run(job, makeTask(job, 0, 10_000), { gpus: [], files, signal: abort.signal })
    await expect.poll(() => readdir(join(dataDir, 'scratch')).then((d) => d.length)).toBe(1)
    abort.abort()
    expect((await running).status).toBe('rejected')
    expect(await readdir(join(dataDir, 'scratch'))).toEqual([])
  })
})

describe("the daemon's own cwd", () => {
  test('is made afresh, empty and read-only, under the data dir', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gridnode-daemon-cwd-'))
    try {
      const first = freshDaemonCwd(dataDir)
      expect(first).toBe(join(dataDir, 'cwd'))
      await chmod(first, 0o755)
      await writeFile(join(first, 'left-by-a-task'), 'x')
      const again = freshDaemonCwd(dataDir)
      expect(await readdir(again)).toEqual([])
      expect((await stat(again)).mode & 0o777).toBe(0o555)
    } finally {
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})

const sandbox = await sandboxHere()

describe.skipIf(!sandbox.available)('working directory rule, sandboxed', () => {
  test("another node's function task with files gets a sandbox of its own: inputs under /work, outputs back, nothing left", async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'gridnode-workdir-sbx-'))
    const blobs = await BlobStore.open(dataDir)
    const b = await bundleModule(WORKDIR_URL)
    await blobs.put(b.bytes)
    const src = join(dataDir, 'input-src.txt')
    await writeFile(src, 'scene-7')
    const { sha256 } = await blobs.importFile(src)
    const files: TaskFiles = {
      inputs: [{ path: 'input.txt', source: blobs.pathOf(sha256), mode: 0o644 }],
      outputs: { globs: ['out-*.txt'], maxBytes: 0 },
    }
    const probed = await probeSandbox('bwrap', { baseDir: join(dataDir, 'sandbox') })
    const executor = createLocalExecutor({
      dataDir,
      slots: 2,
      blobs,
      self: 'me',
      fetchBlob: async () => new Uint8Array(),
      sandbox: { status: probed.status, host: probed.host },
    })
    try {
      const job = makeJob({ kind: 'function', bundle: b.hash, exportName: 'inspect' }, { owner: 'another' })
      const outcomes = await Promise.all(
        ['a', 'b'].map((name, i) => executor.run(job, makeTask(job, i, name), { gpus: [], files })),
      )
      for (const [i, name] of ['a', 'b'].entries()) {
        const seen = okValue(outcomes[i]) as { cwd: string; entries: string[]; input: string }
        expect(seen.cwd).toBe('/work')
        // Fresh: its input (and the worker's TMPDIR), nothing of the other task's.
        expect(seen.entries).toEqual(['.tmp', 'input.txt'])
        expect(seen.input).toBe('scene-7')
        const out = (outcomes[i] as { outputs?: Array<{ name: string; sha256: string }> }).outputs
        expect(out?.map((o) => o.name)).toEqual([`out-${name}.txt`])
        expect(await readFile(blobs.pathOf(out![0].sha256), 'utf8')).toBe(`${name}:scene-7`)
      }
      // Each task's sandbox is gone once it ended (the spares started ahead stay, empty).
      const leftovers = async () => {
        const found: string[] = []
        for (const box of await readdir(join(dataDir, 'sandbox')))
          for (const n of await readdir(join(dataDir, 'sandbox', box, 'work')).catch(() => []))
            if (n !== '.tmp') found.push(`${box}/${n}`)
        return found
      }
      await expect.poll(leftovers).toEqual([])
      expect(await readFile(blobs.pathOf(sha256), 'utf8')).toBe('scene-7')
    } finally {
      await executor.close()
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
