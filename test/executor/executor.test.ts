import { mkdtemp, readdir, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BlobStore } from '../../src/executor/blob-store.ts'
import { bundleModule } from '../../src/executor/bundle.ts'
import { createLocalExecutor, type Executor } from '../../src/executor/executor.ts'
import { scratchName } from '../../src/executor/scratch.ts'
import { decodeValue } from '../../src/executor/values.ts'
import { executorSuite, makeJob, makeTask, okValue } from './suite.ts'

const BASIC_URL = new URL('./fixtures/basic.ts', import.meta.url)

async function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'gridnode-executor-'))
}

executorSuite('local executor', async (slots) => {
  const dataDir = await tempDir()
  const blobs = await BlobStore.open(dataDir)
  const { hash, bytes } = await bundleModule(BASIC_URL)
  await blobs.put(bytes)
  const executor = createLocalExecutor({
    dataDir,
    slots,
    blobs,
    fetchBlob: async (h) => {
      throw new Error(`no peer has blob ${h.slice(0, 12)}`)
    },
  })
  return {
    executor,
    basic: hash,
    close: async () => {
      await executor.close()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
})

describe('local executor: bundles from the mesh', () => {
  let dataDir: string
  let bundle: { hash: string; bytes: Uint8Array }
  beforeAll(async () => {
    dataDir = await tempDir()
    bundle = await bundleModule(BASIC_URL)
  })
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true })
  })

  async function withExecutor(
    sub: string,
    fetchBlob: (hash: string) => Promise<Uint8Array>,
    body: (executor: Executor, blobs: BlobStore) => Promise<void>,
  ): Promise<void> {
    const blobs = await BlobStore.open(join(dataDir, sub))
    const executor = createLocalExecutor({ dataDir: join(dataDir, sub), slots: 2, blobs, fetchBlob })
    try {
      await body(executor, blobs)
    } finally {
      await executor.close()
    }
  }

  test('a missing bundle is fetched once for many concurrent tasks, verified and kept', async () => {
    let fetches = 0
    const fetchBlob = async (hash: string) => {
      fetches++
      await new Promise((resolve) => setTimeout(resolve, 30))
      expect(hash).toBe(bundle.hash)
      return bundle.bytes
    }
    await withExecutor('fetch-once', fetchBlob, async (executor, blobs) => {
      const job = makeJob({ kind: 'function', bundle: bundle.hash, exportName: 'echo' })
      const outcomes = await Promise.all(
        [0, 1, 2, 3, 4].map((i) => executor.run(job, makeTask(job, i, i), { gpus: [] })),
      )
      expect(outcomes.map(okValue)).toEqual([0, 1, 2, 3, 4])
      expect(fetches).toBe(1)
      expect(await blobs.has(bundle.hash)).toBe(true)
      await executor.run(job, makeTask(job, 9, 9), { gpus: [] })
      expect(fetches).toBe(1)
    })
  })

  test('bytes that do not match the hash are rejected and not kept', async () => {
    const tampered = new Uint8Array(bundle.bytes)
    tampered[tampered.length - 2] ^= 1
    await withExecutor(
      'mismatch',
      async () => tampered,
      async (executor, blobs) => {
        const job = makeJob({ kind: 'function', bundle: bundle.hash, exportName: 'echo' })
        const outcome = await executor.run(job, makeTask(job, 0, 1), { gpus: [] })
        expect(outcome.status).toBe('rejected')
        expect((outcome as { error: string }).error).toMatch(
          /unavailable: blob [0-9a-f]{12} failed verification/,
        )
        expect(await blobs.has(bundle.hash)).toBe(false)
      },
    )
  })

  test('a failed fetch is rejected, and a later task tries again', async () => {
    let calls = 0
    const fetchBlob = async () => {
      calls++
      if (calls === 1) throw new Error('peer went away')
      return bundle.bytes
    }
    await withExecutor('retry-fetch', fetchBlob, async (executor) => {
      const job = makeJob({ kind: 'function', bundle: bundle.hash, exportName: 'echo' })
      const first = await executor.run(job, makeTask(job, 0, 1), { gpus: [] })
      expect(first).toMatchObject({ status: 'rejected' })
      expect((first as { error: string }).error).toContain('peer went away')
      expect(okValue(await executor.run(job, makeTask(job, 1, 2), { gpus: [] }))).toBe(2)
    })
  })
})

describe('local executor: commands and closing', () => {
  test('distinct job ids never share a scratch dir', () => {
    const at = (job: string) => scratchName({ job, index: 1, attempt: 1 })
    expect(at('a/b')).not.toBe(at('a_b'))
    expect(at('a/b')).toMatch(/^a_b-[0-9a-f]{16}-1-1$/)
  })

  test('command tasks run in <dataDir>/scratch/<job>-<hash>-<index>-<attempt>, removed afterwards', async () => {
    const dataDir = await tempDir()
    const blobs = await BlobStore.open(dataDir)
    const executor = createLocalExecutor({
      dataDir,
      slots: 1,
      blobs,
      fetchBlob: async () => new Uint8Array(),
    })
    try {
      const job = makeJob({ kind: 'command', argv: ['pwd'], env: {}, stdoutMaxBytes: 1000 }, { id: 'job/x' })
      const task = { ...makeTask(job, 7, undefined), attempt: 2 }
      const outcome = await executor.run(job, task, { gpus: [] })
      const { stdout } = okValue(outcome) as { stdout: string }
      expect(stdout.trim()).toBe(join(dataDir, 'scratch', scratchName(task)))
      expect(await readdir(join(dataDir, 'scratch'))).toEqual([])
    } finally {
      await executor.close()
      await rm(dataDir, { recursive: true, force: true })
    }
  })

  test('close() ends running tasks as crashed, and later runs too', async () => {
    const dataDir = await tempDir()
    const blobs = await BlobStore.open(dataDir)
    const { hash, bytes } = await bundleModule(BASIC_URL)
    await blobs.put(bytes)
    const executor = createLocalExecutor({
      dataDir,
      slots: 1,
      blobs,
      fetchBlob: async () => new Uint8Array(),
    })
    const job = makeJob({ kind: 'function', bundle: hash, exportName: 'sleep' })
    const cmd = makeJob({ kind: 'command', argv: ['sleep', '10'], env: {}, stdoutMaxBytes: 1000 })
    const running = [
      executor.run(job, makeTask(job, 0, 5000), { gpus: [] }),
      executor.run(job, makeTask(job, 1, 5000), { gpus: [] }),
      executor.run(cmd, makeTask(cmd, 0, undefined), { gpus: [] }),
    ]
    await new Promise((resolve) => setTimeout(resolve, 200))
    await executor.close()
    const outcomes = await Promise.all(running)
    expect(outcomes.map((o) => [o.status, (o as { error: string }).error])).toEqual([
      ['crashed', 'executor closed'],
      ['crashed', 'executor closed'],
      ['crashed', 'executor closed'],
    ])
    expect(await executor.run(job, makeTask(job, 2, 1), { gpus: [] })).toMatchObject({ status: 'crashed' })
    expect(decodeValue(new Uint8Array())).toBeUndefined()
    await rm(dataDir, { recursive: true, force: true })
  })
})
