/**
 * What a working directory of its own costs a function task (issue 17 bug
 * 11): no-op throughput on worker threads (the fast path) against plain
 * process slots where each task gets a fresh `<dataDir>/scratch/<task>`
 * (made, entered, walked for outputs, removed), as every function task with
 * files or outputs runs.
 *
 * - in-process: one executor with 2 slots, no network, 5,000 tasks of one job;
 * - through 2 daemons (2 slots each, `GRIDNODE_BENCH_SANDBOX`, default auto):
 *   one map of 5,000 no-ops submitted on the second, without and with an
 *   `outputs` glob that matches nothing (so only the working dir differs).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlobStore } from '../src/executor/blob-store.ts'
import { bundleModule } from '../src/executor/bundle.ts'
import { createLocalExecutor, type Executor, type RunOptions } from '../src/executor/executor.ts'
import { encodeValue } from '../src/executor/values.ts'
import type { JobSpec } from '../src/scheduler/types.ts'
import { meshOf, submitter } from './jobs.ts'

const TASKS = new URL('./fixtures/tasks.ts', import.meta.url)
const SLOTS = 2
const COUNT = 5000

export async function workdirBench(): Promise<Record<string, number | string>> {
  const out: Record<string, number | string> = {}
  Object.assign(out, await inProcess())
  Object.assign(out, await throughDaemons())
  return out
}

async function inProcess(): Promise<Record<string, number>> {
  const dir = await mkdtemp(join(tmpdir(), 'gridnode-bench-workdir-'))
  const blobs = await BlobStore.open(dir)
  const { hash, bytes } = await bundleModule(TASKS)
  await blobs.put(bytes)
  const executor = createLocalExecutor({
    dataDir: dir,
    slots: SLOTS,
    blobs,
    fetchBlob: async () => new Uint8Array(),
  })
  const out: Record<string, number> = {}
  try {
    let jobs = 0
    const job = (): JobSpec => ({
      id: `bench-${++jobs}`,
      owner: 'self',
      work: { kind: 'function', bundle: hash, exportName: 'noop' },
      resources: { cpu: 1, gpu: 0, memoryMB: 0 },
      timeoutMs: 0,
      maxAttempts: 1,
      retries: 0,
    })
    const modes: Array<[string, Partial<RunOptions>]> = [
      ['thread', {}],
      ['process', { files: { inputs: [], outputs: { globs: ['no-such-*'], maxBytes: 0 } } }],
    ]
    for (const [, opts] of modes) await many(executor, job(), 200, opts)
    for (const [mode, opts] of modes)
      out[`inProcess_${mode}_noopTasksPerSec`] = Math.round(
        COUNT / ((await many(executor, job(), COUNT, opts)) / 1000),
      )
    out.inProcess_process_vs_thread = round3(
      out.inProcess_process_noopTasksPerSec / out.inProcess_thread_noopTasksPerSec,
    )
  } finally {
    await executor.close()
    await rm(dir, { recursive: true, force: true })
  }
  return out
}

async function many(ex: Executor, job: JobSpec, n: number, opts: Partial<RunOptions>): Promise<number> {
  const t0 = performance.now()
  const outcomes = await Promise.all(
    Array.from({ length: n }, (_, i) =>
      ex.run(
        job,
        { job: job.id, index: i, attempt: 1, input: encodeValue(i), depValues: [] },
        { gpus: [], ...opts },
      ),
    ),
  )
  const ms = performance.now() - t0
  const bad = outcomes.find((o) => o.status !== 'ok')
  if (bad !== undefined) throw new Error(`a benchmark task failed: ${JSON.stringify(bad)}`)
  return ms
}

async function throughDaemons(): Promise<Record<string, number>> {
  const { mesh, nodes } = await meshOf('bench-workdir', 2, SLOTS)
  const out: Record<string, number> = {}
  try {
    const grid = await submitter(nodes)
    const inputs = Array.from({ length: COUNT }, (_, i) => i)
    const modes: Array<[string, { outputs?: string[] }]> = [
      ['thread', {}],
      ['process', { outputs: ['no-such-*'] }],
    ]
    for (const [, o] of modes) await grid.map(TASKS, 'noop', [0, 1, 2, 3], o).results()
    for (const [mode, o] of modes) {
      const t0 = performance.now()
      const values = await grid.map(TASKS, 'noop', inputs, o).results()
      if (values.length !== COUNT) throw new Error('lost results')
      out[`daemons2_${mode}_noopTasksPerSec`] = Math.round(COUNT / ((performance.now() - t0) / 1000))
    }
    out.daemons2_process_vs_thread = round3(
      out.daemons2_process_noopTasksPerSec / out.daemons2_thread_noopTasksPerSec,
    )
  } finally {
    await mesh.stopAll()
  }
  return out
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000
}
