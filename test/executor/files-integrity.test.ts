/**
 * Staged inputs are read-only for real (issue 14): a task running as the daemon's user (here
 * root, for whom mode 0444 is advice) that writes through its input must not change the cached
 * blob, must fail with a clear message, and the next task of the job on the node must read the
 * original bytes. Before the fix, inputs were hard links to the blob file itself and
 * `echo overwrite > input.txt` rewrote the cache.
 */
import { createHash } from 'node:crypto'
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import type { JobSpec, TaskOutcome } from '../../src/domain/types.ts'
import { BlobStore } from '../../src/executor/blob-store.ts'
import { bundleModule } from '../../src/executor/bundle.ts'
import { createLocalExecutor, type Executor } from '../../src/executor/executor.ts'
import { shadowStats, stageInputs, type TaskFiles } from '../../src/executor/files.ts'
import { probeSandbox } from '../../src/executor/sandbox/probe.ts'
import { shadowRoot } from '../../src/executor/scratch.ts'
import { makeJob, makeTask, okValue, sandboxHere } from './suite.ts'

const FIXTURE_URL = new URL('./fixtures/overwrite.ts', import.meta.url)
const ORIGINAL = 'original bytes of the scene\n'

function command(script: string): JobSpec {
  return makeJob({ kind: 'command', argv: ['sh', '-c', script], env: {}, stdoutMaxBytes: 10_000 })
}

function stdoutOf(o: TaskOutcome): string {
  return (okValue(o) as { stdout: string }).stdout
}

async function setup(
  prefix: string,
): Promise<{ dataDir: string; blobs: BlobStore; hash: string; files: TaskFiles }> {
  const dataDir = await mkdtemp(join(tmpdir(), prefix))
  const blobs = await BlobStore.open(dataDir)
  const src = join(dataDir, 'input-src.txt')
  await writeFile(src, ORIGINAL)
  const { sha256 } = await blobs.importFile(src)
  const files: TaskFiles = { inputs: [{ path: 'input.txt', source: blobs.pathOf(sha256), mode: 0o644 }] }
  return { dataDir, blobs, hash: sha256, files }
}

async function blobIntact(blobs: BlobStore, hash: string): Promise<void> {
  const bytes = await readFile(blobs.pathOf(hash))
  expect(bytes.toString()).toBe(ORIGINAL)
  expect(createHash('sha256').update(bytes).digest('hex')).toBe(hash)
}

describe('a task writing through its staged input (unsandboxed, as the daemon user)', () => {
  let dataDir: string
  let blobs: BlobStore
  let hash: string
  let files: TaskFiles
  let executor: Executor
  let bundle: string

  beforeAll(async () => {
    ;({ dataDir, blobs, hash, files } = await setup('gridnode-integrity-'))
    const b = await bundleModule(FIXTURE_URL)
    await blobs.put(b.bytes)
    bundle = b.hash
    executor = createLocalExecutor({ dataDir, slots: 3, blobs, fetchBlob: async () => new Uint8Array() })
  })
  afterAll(async () => {
    await executor?.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  test('echo overwrite > input.txt: the task fails, the blob is intact, the next task of the job reads the original', async () => {
    const job = command('if [ "{}" = write ]; then echo overwrite > input.txt; fi; cat input.txt')
    const bad = await executor.run(job, makeTask(job, 0, 'write'), { gpus: [], files })
    expect(bad).toMatchObject({
      status: 'threw',
      error: 'task changed its read-only input input.txt; inputs are read-only, write outputs to new files',
    })
    await blobIntact(blobs, hash)
    expect(stdoutOf(await executor.run(job, makeTask(job, 1, 'read'), { gpus: [], files }))).toBe(ORIGINAL)
  })

  test('chmod back: writable, overwritten with the same size, mtime restored, read-only again: caught (ctime)', async () => {
    const same = ORIGINAL.replace('original', 'ORIGINAL')
    const job = command(
      `if [ "{}" = write ]; then m=$(stat -c %y input.txt); chmod 644 input.txt; printf '%s' '${same}' > input.txt; touch -d "$m" input.txt; chmod 444 input.txt; fi; cat input.txt`,
    )
    const bad = await executor.run(job, makeTask(job, 0, 'write'), { gpus: [], files })
    expect(bad).toMatchObject({
      status: 'threw',
      error: expect.stringContaining('task changed its read-only input input.txt'),
    })
    await blobIntact(blobs, hash)
    expect(stdoutOf(await executor.run(job, makeTask(job, 1, 'read'), { gpus: [], files }))).toBe(ORIGINAL)
  })

  test('a task that ran beside the writer is void too, not silently fed the bad bytes', async () => {
    // In step: the reader is running (staged) before the writer writes, and reads after.
    const sync = join(dataDir, 'sync')
    await mkdir(sync)
    const wait = (name: string) => `while [ ! -e ${sync}/${name} ]; do sleep 0.02; done`
    const writer = command(`${wait('reader-in')}; echo overwrite > input.txt; touch ${sync}/written`)
    const reader = command(`touch ${sync}/reader-in; ${wait('written')}; cat input.txt`)
    const [w, r] = await Promise.all([
      executor.run(writer, makeTask(writer, 0, undefined), { gpus: [], files }),
      executor.run(reader, makeTask(reader, 0, undefined), { gpus: [], files }),
    ])
    // Both held the input when it changed: neither can be told from the other, both are void.
    for (const o of [w, r])
      expect(o).toMatchObject({
        status: 'crashed',
        error: expect.stringContaining('input input.txt was changed'),
      })
    await blobIntact(blobs, hash)
    const plain = command('cat input.txt')
    expect(stdoutOf(await executor.run(plain, makeTask(plain, 0, undefined), { gpus: [], files }))).toBe(
      ORIGINAL,
    )
  })

  test('a function task with files (process slot) that writes through its input fails; the next task of the job reads the original', async () => {
    const job = makeJob({ kind: 'function', bundle, exportName: 'act' })
    const bad = await executor.run(job, makeTask(job, 0, 'write'), { gpus: [], files })
    expect(bad).toMatchObject({
      status: 'threw',
      error: 'task changed its read-only input input.txt; inputs are read-only, write outputs to new files',
    })
    await blobIntact(blobs, hash)
    expect(okValue(await executor.run(job, makeTask(job, 1, 'read'), { gpus: [], files }))).toBe(ORIGINAL)
  })

  test('an executable input stays executable (its own shadow, mode 0555); the blob is not chmodded', async () => {
    const script = join(dataDir, 'run-src.sh')
    await writeFile(script, '#!/bin/sh\necho ran\n')
    const { sha256 } = await blobs.importFile(script)
    const withScript: TaskFiles = {
      inputs: [...files.inputs, { path: 'bin/run.sh', source: blobs.pathOf(sha256), mode: 0o755 }],
    }
    const job = command('./bin/run.sh; cat input.txt')
    expect(
      stdoutOf(await executor.run(job, makeTask(job, 0, undefined), { gpus: [], files: withScript })),
    ).toBe(`ran\n${ORIGINAL}`)
    expect((await stat(blobs.pathOf(sha256))).mode & 0o777).toBe(0o444)
  })

  test('a task that removes its input link (or replaces it) is not blamed: only its bytes are compared', async () => {
    const job = command('cat input.txt; rm -f input.txt; echo mine > input.txt')
    expect(stdoutOf(await executor.run(job, makeTask(job, 0, undefined), { gpus: [], files }))).toBe(ORIGINAL)
    await blobIntact(blobs, hash)
  })

  test('one copy per node however many tasks stage it; tasks that only read pass', async () => {
    const before = shadowStats.made
    const hashed = shadowStats.hashed
    const job = command('cat input.txt')
    const outcomes = await Promise.all(
      Array.from({ length: 9 }, (_, i) =>
        executor.run(job, makeTask(job, i, undefined), { gpus: [], files }),
      ),
    )
    for (const o of outcomes) expect(stdoutOf(o)).toBe(ORIGINAL)
    // The shadow from the reads above (made fresh after the last change) serves all nine.
    expect(shadowStats.made - before).toBeLessThanOrEqual(1)
    // Nothing hashed: the daemon's own links and unlinks are accounted for.
    expect(shadowStats.hashed).toBe(hashed)
    // One shadow of it on disk (no leftover copies).
    const id = createHash('sha256').update(files.inputs[0].source).digest('hex').slice(0, 32)
    expect((await readdir(shadowRoot(dataDir))).filter((n) => n.startsWith(id))).toEqual([`${id}r`])
    // The blob file itself was never linked into a task.
    expect((await stat(blobs.pathOf(hash))).nlink).toBe(1)
  })
})

test('a shadow changed between tasks (a process the task left behind) is replaced before the next task links it', async () => {
  const { dataDir, hash, files, blobs } = await setup('gridnode-integrity-shadow-')
  try {
    const work = join(dataDir, 'scratch', 't1')
    const shadows = join(dataDir, 'inputs')
    const first = await stageInputs(work, files.inputs, shadows)
    expect(await first.check()).toBeUndefined()
    // Written while no task holds it (root ignores the mode).
    const [name] = await readdir(shadows)
    await writeFile(join(shadows, name), 'late write')
    const second = await stageInputs(join(dataDir, 'scratch', 't2'), files.inputs, shadows)
    expect(await readFile(join(dataDir, 'scratch', 't2', 'input.txt'), 'utf8')).toBe(ORIGINAL)
    expect(await second.check()).toBeUndefined()
    await blobIntact(blobs, hash)
  } finally {
    await rm(dataDir, { recursive: true, force: true })
  }
})

test('a blob that does not match its name is refused, not staged', async () => {
  const { dataDir, hash, files } = await setup('gridnode-integrity-corrupt-')
  try {
    const { chmod } = await import('node:fs/promises')
    await chmod(files.inputs[0].source, 0o644)
    await writeFile(files.inputs[0].source, 'corrupt')
    await expect(
      stageInputs(join(dataDir, 'scratch', 't'), files.inputs, join(dataDir, 'inputs')),
    ).rejects.toThrow(`cached input ${hash.slice(0, 12)} is corrupt`)
  } finally {
    await rm(dataDir, { recursive: true, force: true })
  }
})

const sandbox = await sandboxHere()

describe.skipIf(!sandbox.available)('sandboxed: inputs are read-only bind mounts', () => {
  test('a command and a function task, as their per-sandbox uid, cannot write or chmod their input', async () => {
    const { dataDir, blobs, hash, files } = await setup('gridnode-integrity-sbx-')
    const b = await bundleModule(FIXTURE_URL)
    await blobs.put(b.bytes)
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
      const cmd = makeJob(
        {
          kind: 'command',
          argv: [
            'sh',
            '-c',
            'id -u; chmod 644 input.txt 2>&1; echo overwrite > input.txt 2>&1; cat input.txt',
          ],
          env: {},
          stdoutMaxBytes: 10_000,
        },
        { owner: 'another' },
      )
      const out = stdoutOf(await executor.run(cmd, makeTask(cmd, 0, undefined), { gpus: [], files }))
      expect(out.split('\n')[0]).not.toBe('0')
      expect(out).toMatch(/Read-only file system/)
      expect(out.endsWith(ORIGINAL)).toBe(true)
      const fn = makeJob({ kind: 'function', bundle: b.hash, exportName: 'overwrite' }, { owner: 'another' })
      expect(okValue(await executor.run(fn, makeTask(fn, 0, undefined), { gpus: [], files }))).toBe('EROFS')
      await blobIntact(blobs, hash)
    } finally {
      await executor.close()
      await probed.host?.close()
      await rm(dataDir, { recursive: true, force: true })
    }
  })
})
