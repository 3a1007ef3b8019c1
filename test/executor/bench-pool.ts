/**
 * Throughput of the worker pool for no-op tasks (not a vitest file):
 *   npx node test/executor/bench-pool.ts [tasks=200000] [size=2]
 * Bundles fixtures/basic.ts into a temporary blob store and warms the pool
 * up, then measures two ways:
 * - burst: every task submitted at once, each with its own encoded input,
 *   then all results awaited (the submitter's encoding and promises count);
 * - stream: a fixed number of tasks outstanding, a new one submitted as each
 *   ends (as the scheduler feeds a node's executor).
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlobStore } from '../../src/executor/blob-store.ts'
import { bundleModule } from '../../src/executor/bundle.ts'
import { encodeValue } from '../../src/executor/values.ts'
import { type PoolTask, WorkerPool } from '../../src/executor/worker-pool.ts'

const total = Number(process.argv[2] ?? 200_000)
const size = Number(process.argv[3] ?? 2)
const dir = await mkdtemp(join(tmpdir(), 'gridnode-bench-'))
const blobs = await BlobStore.open(dir)
const { hash, bytes } = await bundleModule(new URL('./fixtures/basic.ts', import.meta.url))
await blobs.put(bytes)
const pool = new WorkerPool({ size })
const base: PoolTask = {
  bundle: hash,
  url: blobs.urlOf(hash),
  exportName: 'noop',
  input: encodeValue(0),
  depValues: [],
  timeoutMs: 0,
  memoryMB: 0,
}

async function burst(n: number, over: Partial<PoolTask> = {}): Promise<number> {
  const t0 = performance.now()
  const outs = await Promise.all(
    Array.from({ length: n }, (_, i) => pool.run({ ...base, ...over, input: encodeValue(i) })),
  )
  const rate = n / ((performance.now() - t0) / 1000)
  const bad = outs.find((o) => o.status !== 'ok')
  if (bad !== undefined) throw new Error(`a task failed: ${JSON.stringify(bad)}`)
  return rate
}

function stream(n: number, window: number): Promise<number> {
  const t0 = performance.now()
  let sent = 0
  let done = 0
  return new Promise((resolve, reject) => {
    const one = () => {
      sent++
      pool.run(base).then((o) => {
        if (o.status !== 'ok') reject(new Error(JSON.stringify(o)))
        if (++done === n) resolve(n / ((performance.now() - t0) / 1000))
        else if (sent < n) one()
      })
    }
    for (let i = 0; i < Math.min(window, n); i++) one()
  })
}

await burst(20_000)
const report = (what: string, rate: number) =>
  console.log(`${what.padEnd(40)} ${String(Math.round(rate)).padStart(7)} tasks/s`)
console.log(`pool size ${size}, ${total} no-op tasks per run, Node ${process.version}`)
report('burst', await burst(total))
report('burst, echo (input back as result)', await burst(total, { exportName: 'echo' }))
report('burst, timeoutMs 60000', await burst(total, { timeoutMs: 60_000 }))
for (const window of [2, 16, 64, 256]) report(`stream, ${window} outstanding`, await stream(total, window))
await pool.close()
await rm(dir, { recursive: true, force: true })
