/**
 * Thread mode against sandbox mode, side by side in one run, on one
 * executor with 2 slots (the daemon's executor, without the network): the
 * node's own jobs take the worker-thread fast path, another node's jobs run
 * in sandboxed workers (bubblewrap + Node's permission model).
 *
 * - no-op throughput: 10,000 tasks of one job submitted at once (PEERS.md a);
 * - round trip: 500 single tasks one after another, p50 / p99 (b);
 * - CPU-bound: 2,000 tasks of a 2,000-round SHA-256 chain on 2 slots (d);
 * - one sandboxed worker: start cost (spawn to its first frame, median of
 *   10) and idle memory (RSS of its node process, and of the whole sandbox).
 */
import { createHash } from 'node:crypto'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlobStore } from '../src/executor/blob-store.ts'
import { bundleModule } from '../src/executor/bundle.ts'
import { createLocalExecutor, type Executor } from '../src/executor/executor.ts'
import { FrameReader } from '../src/executor/sandbox/frames.ts'
import type { SandboxHost } from '../src/executor/sandbox/host.ts'
import { probeSandbox } from '../src/executor/sandbox/probe.ts'
import { descendants } from '../src/executor/sandbox/proc-tree.ts'
import { encodeValue } from '../src/executor/values.ts'
import type { JobSpec } from '../src/scheduler/types.ts'

const SELF = 'self'
const SLOTS = 2

export async function sandboxBench(): Promise<Record<string, number | string>> {
  const dir = await mkdtemp(join(tmpdir(), 'gridnode-bench-sandbox-'))
  const blobs = await BlobStore.open(dir)
  const { hash, bytes } = await bundleModule(new URL('./fixtures/cpu.ts', import.meta.url))
  await blobs.put(bytes)
  const probed = await probeSandbox('bwrap', { baseDir: join(dir, 'sandbox') })
  if (probed.host === undefined) {
    await rm(dir, { recursive: true, force: true })
    return { skipped: probed.status.reason }
  }
  const executor = createLocalExecutor({
    dataDir: dir,
    slots: SLOTS,
    blobs,
    self: SELF,
    fetchBlob: async () => new Uint8Array(),
    sandbox: { status: probed.status, host: probed.host },
  })
  const out: Record<string, number | string> = {}
  try {
    let jobs = 0
    const job = (owner: string, exportName: string): JobSpec => ({
      id: `bench-${++jobs}`,
      owner,
      work: { kind: 'function', bundle: hash, exportName },
      resources: { cpu: 1, gpu: 0, memoryMB: 0 },
      timeoutMs: 0,
      maxAttempts: 1,
      retries: 0,
    })
    const modes = [
      ['thread', SELF],
      ['sandbox', 'another-node'],
    ] as const
    // Warm both paths (worker threads started, sandboxed spares up, bundle loaded).
    for (const [, owner] of modes) await many(executor, job(owner, 'noop'), 200, () => 0)
    for (const [mode, owner] of modes) {
      out[`${mode}_noopTasksPerSec`] = Math.round(
        10_000 / ((await many(executor, job(owner, 'noop'), 10_000, (i) => i)) / 1000),
      )
    }
    for (const [mode, owner] of modes) {
      const { p50, p99 } = await roundTrip(executor, job(owner, 'noop'), 500)
      out[`${mode}_roundTripP50Ms`] = round3(p50)
      out[`${mode}_roundTripP99Ms`] = round3(p99)
    }
    serialChain(50, 2000) // JIT warm-up
    const serialMs = serialChain(200, 2000) * 10
    for (const [mode, owner] of modes) {
      const ms = await many(executor, job(owner, 'shaChain'), 2000, () => 2000)
      out[`${mode}_cpuBoundSec`] = round3(ms / 1000)
      out[`${mode}_cpuBoundRatio`] = round3(serialMs / SLOTS / ms)
    }
    out.sandbox_vs_thread_noop = round3(
      (out.sandbox_noopTasksPerSec as number) / (out.thread_noopTasksPerSec as number),
    )
    out.sandbox_vs_thread_cpuBound = round3(
      (out.thread_cpuBoundSec as number) / (out.sandbox_cpuBoundSec as number),
    )
    Object.assign(out, await workerFigures(probed.host))
  } finally {
    await executor.close()
    await rm(dir, { recursive: true, force: true })
  }
  return out
}

async function many(ex: Executor, job: JobSpec, n: number, input: (i: number) => unknown): Promise<number> {
  const tasks = Array.from({ length: n }, (_, i) => ({
    job: job.id,
    index: i,
    attempt: 1,
    input: encodeValue(input(i)),
    depValues: [],
  }))
  const t0 = performance.now()
  const outcomes = await Promise.all(tasks.map((t) => ex.run(job, t, { gpus: [] })))
  const ms = performance.now() - t0
  const bad = outcomes.find((o) => o.status !== 'ok')
  if (bad !== undefined) throw new Error(`a benchmark task failed: ${JSON.stringify(bad)}`)
  return ms
}

async function roundTrip(ex: Executor, job: JobSpec, n: number): Promise<{ p50: number; p99: number }> {
  const times: number[] = []
  for (let i = 0; i < n; i++) {
    const t0 = performance.now()
    const o = await ex.run(
      job,
      { job: job.id, index: i, attempt: 1, input: encodeValue(i), depValues: [] },
      { gpus: [] },
    )
    times.push(performance.now() - t0)
    if (o.status !== 'ok') throw new Error(`a benchmark task failed: ${JSON.stringify(o)}`)
  }
  times.sort((a, b) => a - b)
  return { p50: times[Math.floor(n / 2)], p99: times[Math.floor(n * 0.99)] }
}

/** Serial time (ms) of `n` chains here, in this thread. */
function serialChain(n: number, rounds: number): number {
  const t0 = performance.now()
  for (let t = 0; t < n; t++) {
    let h: Buffer = Buffer.from('gridnode')
    for (let i = 0; i < rounds; i++) h = createHash('sha256').update(h).digest()
  }
  return performance.now() - t0
}

/** Start cost and idle memory of one sandboxed worker. */
async function workerFigures(host: SandboxHost): Promise<Record<string, number>> {
  const starts: number[] = []
  let nodeRssMB = 0
  let sandboxRssMB = 0
  for (let i = 0; i < 10; i++) {
    const t0 = performance.now()
    const p = host.startWorker({ memoryMB: 0, gpus: undefined })
    await new Promise<void>((resolve, reject) => {
      const reader = new FrameReader()
      ;(p.child.stdio[3] as NodeJS.ReadableStream).on('data', (c: Buffer) => {
        if (reader.push(c).length > 0) resolve()
      })
      p.child.once('close', () => reject(new Error('a sandboxed worker exited before it was up')))
    })
    starts.push(performance.now() - t0)
    if (i === 0) {
      await new Promise((r) => setTimeout(r, 1000))
      const pids = [p.child.pid!, ...descendants(p.child.pid!)]
      const rss = pids.map((pid) => rssKB(pid) / 1024)
      sandboxRssMB = rss.reduce((a, b) => a + b, 0)
      nodeRssMB = rss[rss.length - 1]
    }
    await p.dispose()
  }
  starts.sort((a, b) => a - b)
  return {
    sandboxWorkerStartMsP50: round3(starts[5]),
    sandboxWorkerIdleRssMB_node: Math.round(nodeRssMB),
    sandboxWorkerIdleRssMB_total: Math.round(sandboxRssMB),
  }
}

function rssKB(pid: number): number {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Number(m[1]) : 0
  } catch {
    return 0
  }
}

function round3(x: number): number {
  return Number(x.toFixed(3))
}
