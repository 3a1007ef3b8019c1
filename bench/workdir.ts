/**
 * What a working directory of its own costs a function task (issue 17 bug
 * 11): no-op throughput on worker threads (the fast path) against plain
 * process slots where each task gets a fresh `<dataDir>/scratch/<task>`
 * (made, entered, walked for outputs, removed), as every function task with
 * files or outputs runs.
 *
 * - in-process: one executor with 2 slots, no network, 5,000 tasks of one job;
 * - through 2 daemons (2 slots each, `GRIDNODE_BENCH_SANDBOX`, default auto):
 *   one map of 5,000 no-ops submitted on the second: on threads; on daemons
 *   started with GRIDNODE_BENCH_FUNCTION_SLOTS=process, where every function
 *   task takes a process slot and a directory of its own (the "one rule"
 *   option); and with an `outputs` glob that matches nothing (the rule as it
 *   is: a job with outputs, which also takes the driver's files path).
 *   A fresh mesh for each, so one's workers do not warm the next.
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
  const out: Record<string, number> = {}
  const runs: Array<[string, boolean, { outputs?: string[] }]> = [
    ['thread', false, {}],
    ['processAll', true, {}],
    ['outputs', false, { outputs: ['no-such-*'] }],
  ]
  for (const [mode, processSlots, o] of runs) {
    // The daemons read it when they start (they inherit this process's environment).
    if (processSlots) process.env.GRIDNODE_BENCH_FUNCTION_SLOTS = 'process'
    const { mesh, nodes } = await meshOf(`bench-workdir-${mode}`, 2, SLOTS).finally(() => {
      delete process.env.GRIDNODE_BENCH_FUNCTION_SLOTS
    })
    try {
      const grid = await submitter(nodes)
      await grid.map(TASKS, 'noop', [0, 1, 2, 3], o).results()
      const t0 = performance.now()
      const values = await grid.map(TASKS, 'noop', inputs(), o).results()
      if (values.length !== COUNT) throw new Error('lost results')
      out[`daemons2_${mode}_noopTasksPerSec`] = Math.round(COUNT / ((performance.now() - t0) / 1000))
    } finally {
      await mesh.stopAll()
    }
  }
  for (const mode of ['processAll', 'outputs'])
    out[`daemons2_${mode}_vs_thread`] = round3(
      out[`daemons2_${mode}_noopTasksPerSec`] / out.daemons2_thread_noopTasksPerSec,
    )
  return out
}

const inputs = () => Array.from({ length: COUNT }, (_, i) => i)

function round3(x: number): number {
  return Math.round(x * 1000) / 1000
}
