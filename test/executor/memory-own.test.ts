/**
 * --memory as a real limit for this node's own function tasks: where a
 * sandbox works, a job that sets memoryMB runs in the sandboxed process pool
 * (an rlimit covers all its memory), not in a worker thread whose heap limit
 * leaves Buffers out. Skipped where bubblewrap does not work.
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BlobStore } from '../../src/executor/blob-store.ts'
import { bundleModule } from '../../src/executor/bundle.ts'
import { createLocalExecutor, type Executor } from '../../src/executor/executor.ts'
import { probeSandbox } from '../../src/executor/sandbox/probe.ts'
import { makeJob, makeTask, okValue, sandboxHere } from './suite.ts'

const SELF = 'me'
const PROBING = new URL('./fixtures/probing.ts', import.meta.url)

const sandbox = await sandboxHere()

describe.skipIf(!sandbox.available)('an own function task with memoryMB', () => {
  let dataDir: string
  let executor: Executor
  let bundle: string
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gridnode-memown-'))
    const blobs = await BlobStore.open(dataDir)
    const b = await bundleModule(PROBING)
    await blobs.put(b.bytes)
    bundle = b.hash
    const probed = await probeSandbox('bwrap', { baseDir: join(dataDir, 'sandbox') })
    executor = createLocalExecutor({
      dataDir,
      slots: 1,
      blobs,
      self: SELF,
      fetchBlob: async () => {
        throw new Error('no peers here')
      },
      sandbox: { status: probed.status, host: probed.host },
    })
  })
  afterAll(async () => {
    await executor?.close()
    await rm(dataDir, { recursive: true, force: true })
  })

  test('cannot allocate a 3 GB Buffer under a 256 MB limit; without memoryMB it runs on the worker threads', async () => {
    const limited = makeJob(
      { kind: 'function', bundle, exportName: 'alloc' },
      { owner: SELF, resources: { cpu: 1, gpu: 0, memoryMB: 256 } },
    )
    const big = await executor.run(limited, makeTask(limited, 0, 3 * 1024 ** 3), { gpus: [] })
    expect(['threw', 'crashed']).toContain(big.status)
    const where = makeJob({ kind: 'function', bundle, exportName: 'whoami' }, { owner: SELF })
    const me = okValue(await executor.run(where, makeTask(where, 0, null), { gpus: [] })) as { cwd: string }
    expect(me.cwd).not.toBe('/work')
  })
})
