import { mkdtemp, readFile, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BlobStore } from '../../src/executor/blob-store.ts'
import { bundleModule } from '../../src/executor/bundle.ts'
import { decodeValue, encodeValue } from '../../src/executor/values.ts'
import { type PoolTask, WorkerPool } from '../../src/executor/worker-pool.ts'
import type { TaskOutcome } from '../../src/scheduler/types.ts'

let dir: string
let blobs: BlobStore
let basic: string
let crashy: string
let tally: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gridnode-pool-'))
  blobs = await BlobStore.open(dir)
  basic = await blobs.put((await bundleModule(new URL('./fixtures/basic.ts', import.meta.url))).bytes)
  crashy = await blobs.put((await bundleModule(new URL('./fixtures/crashy.ts', import.meta.url))).bytes)
  tally = await blobs.put((await bundleModule(new URL('./fixtures/tally.ts', import.meta.url))).bytes)
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function task(bundle: string, exportName: string, input: unknown, over: Partial<PoolTask> = {}): PoolTask {
  return {
    bundle,
    url: blobs.urlOf(bundle),
    exportName,
    input: encodeValue(input),
    depValues: [],
    timeoutMs: 0,
    memoryMB: 0,
    ...over,
  }
}

function value(o: TaskOutcome): unknown {
  if (o.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(o)}`)
  return decodeValue(o.value)
}

async function withPool(size: number, body: (pool: WorkerPool) => Promise<void>): Promise<void> {
  const pool = new WorkerPool({ size })
  try {
    await body(pool)
  } finally {
    await pool.close()
  }
}

/** Runs enough quick calls of an export that the pool sends it to workers in batches. */
async function warm(pool: WorkerPool, bundle: string, exportName: string, input: unknown): Promise<void> {
  await Promise.all(Array.from({ length: 40 }, () => pool.run(task(bundle, exportName, input))))
}

describe('WorkerPool: workers that die', () => {
  test('process.exit in a task: crashed, and the tasks queued behind it still run', async () => {
    await withPool(1, async (pool) => {
      await warm(pool, basic, 'echo', 0)
      const outcomes = await Promise.all([
        pool.run(task(crashy, 'exit', 3)),
        pool.run(task(basic, 'echo', 'a')),
        pool.run(task(basic, 'echo', 'b')),
      ])
      expect(outcomes[0]).toMatchObject({ status: 'crashed', error: 'worker exited with code 3' })
      expect(outcomes.slice(1).map(value)).toEqual(['a', 'b'])
      expect(pool.stats().workers).toBe(1)
    })
  })

  test('a task over its memory limit: crashed (out of memory), the pool goes on', async () => {
    await withPool(1, async (pool) => {
      const outcome = await pool.run(task(crashy, 'hog', 0, { memoryMB: 32 }))
      expect(outcome).toMatchObject({ status: 'crashed', error: 'worker ran out of memory (limit 32 MB)' })
      expect(value(await pool.run(task(basic, 'echo', 'after')))).toBe('after')
    })
  })

  test('an error thrown outside the task code while it awaits: crashed with the message', async () => {
    await withPool(1, async (pool) => {
      const outcome = await pool.run(task(crashy, 'throwWhileAwaiting', 0))
      expect(outcome).toMatchObject({ status: 'crashed', error: 'worker crashed: thrown from a timer' })
      // Thrown after its task ended: the worker dies between tasks, and the next task still runs.
      await pool.run(task(crashy, 'throwOutside', 0))
      expect(value(await pool.run(task(basic, 'echo', 'next')))).toBe('next')
    })
  })

  test('a module that crashes its worker after loading: the task running then is blamed', async () => {
    const bomb = await blobs.put(
      new TextEncoder().encode(
        'setTimeout(() => { throw new Error("bomb") }, 20)\nexport const wait = () => new Promise(() => {})\n',
      ),
    )
    await withPool(1, async (pool) => {
      await warm(pool, basic, 'echo', 0)
      const outcomes = await Promise.all([pool.run(task(bomb, 'wait', 0)), pool.run(task(basic, 'echo', 1))])
      expect(outcomes[0]).toMatchObject({ status: 'crashed', error: 'worker crashed: bomb' })
      expect(value(outcomes[1])).toBe(1)
    })
  })

  test('workers that die with no task to blame fail the tasks they held after 3 tries, never loop', async () => {
    const pool = new WorkerPool({
      size: 1,
      workerUrl: new URL('data:text/javascript,throw new Error("broken worker")'),
    })
    try {
      const outcomes = await Promise.all([pool.run(task(basic, 'echo', 1)), pool.run(task(basic, 'echo', 2))])
      for (const o of outcomes) {
        expect(o).toMatchObject({
          status: 'crashed',
          error: "worker crashed: broken worker (the task's worker died 3 times)",
        })
      }
    } finally {
      await pool.close()
    }
  })
})

describe('WorkerPool: time limits and cancellation', () => {
  test('a synchronous endless loop times out; the tasks queued behind it on that worker run elsewhere', async () => {
    await withPool(1, async (pool) => {
      await warm(pool, basic, 'echo', 0)
      const t0 = performance.now()
      const outcomes = await Promise.all([
        pool.run(task(crashy, 'forever', 0, { timeoutMs: 200 })),
        pool.run(task(basic, 'echo', 1)),
        pool.run(task(basic, 'echo', 2)),
      ])
      expect(outcomes[0]).toMatchObject({ status: 'timeout', error: 'task timed out after 200 ms' })
      expect(outcomes[0].durationMs).toBeGreaterThanOrEqual(195)
      expect(performance.now() - t0).toBeLessThan(1500)
      expect(outcomes.slice(1).map(value)).toEqual([1, 2])
    })
  })

  test('time limits run from when a task starts, not from when it was queued on the worker', async () => {
    await withPool(1, async (pool) => {
      await warm(pool, crashy, 'spin', 0)
      // Sent in one batch: the third ends ~450 ms after the batch, each well under its 300 ms limit.
      const three = [0, 1, 2].map(() => pool.run(task(crashy, 'spin', 150, { timeoutMs: 300 })))
      await Promise.resolve()
      expect(pool.stats()).toMatchObject({ workers: 1, queued: 0, inFlight: 3 })
      expect((await Promise.all(three)).map((o) => o.status)).toEqual(['ok', 'ok', 'ok'])
      // A long task sent right behind a quick one, whose result is not sent back yet when it starts.
      await warm(pool, crashy, 'spin', 0)
      // (The worker sends the first result of a run at once, and holds later ones up to 2 ms.)
      const batch = [0, 0, 60_000].map((ms) => pool.run(task(crashy, 'spin', ms, { timeoutMs: 300 })))
      await Promise.resolve()
      expect(pool.stats()).toMatchObject({ workers: 1, queued: 0, inFlight: 3 })
      expect((await Promise.all(batch)).map((o) => o.status)).toEqual(['ok', 'ok', 'timeout'])
    })
  })

  test('cancelling a running synchronous task stops its worker', async () => {
    await withPool(1, async (pool) => {
      const controller = new AbortController()
      const t0 = performance.now()
      const running = pool.run(task(crashy, 'spin', 10_000), controller.signal)
      const queued = pool.run(task(basic, 'echo', 'queued'))
      setTimeout(() => controller.abort(), 150)
      expect(await running).toMatchObject({ status: 'rejected', error: 'cancelled' })
      expect(performance.now() - t0).toBeLessThan(2000)
      expect(value(await queued)).toBe('queued')
    })
  })
})

describe('WorkerPool: values, modules, environment', () => {
  test('a result that cannot be encoded: threw, naming what and where', async () => {
    await withPool(1, async (pool) => {
      const fn = await pool.run(task(crashy, 'returnsFunction', 0))
      expect(fn).toMatchObject({ status: 'threw' })
      expect((fn as { error: string }).error).toMatch(/^cannot encode a function \(fn\) at result\.fn: /)
      const cls = await pool.run(task(crashy, 'returnsClass', 0))
      expect((cls as { error: string }).error).toMatch(/^cannot encode an instance of Point at result: /)
    })
  })

  test('messages task code posts to the parent port are ignored', async () => {
    await withPool(1, async (pool) => {
      expect(value(await pool.run(task(crashy, 'postJunk', 0)))).toBe('fine')
    })
  })

  test('an input whose buffer was transferred away: crashed, and the pool goes on', async () => {
    await withPool(1, async (pool) => {
      const input = encodeValue('gone')
      structuredClone(input.buffer, { transfer: [input.buffer] })
      const outcome = await pool.run({ ...task(basic, 'echo', 0), input })
      expect(outcome).toMatchObject({ status: 'crashed' })
      expect(value(await pool.run(task(basic, 'echo', 'next')))).toBe('next')
    })
  })

  test('a bundle file that is missing: rejected', async () => {
    await withPool(1, async (pool) => {
      const outcome = await pool.run(task('0'.repeat(64), 'echo', 1))
      expect(outcome).toMatchObject({ status: 'rejected' })
      expect((outcome as { error: string }).error).toMatch(/^cannot load module 000000000000: /)
    })
  })

  test('GPU tasks see CUDA_VISIBLE_DEVICES in process.env; other tasks do not', async () => {
    await withPool(1, async (pool) => {
      const before = value(await pool.run(task(crashy, 'gpuEnv', 0)))
      expect(value(await pool.run(task(crashy, 'gpuEnv', 0, { gpus: [1, 3] })))).toEqual({
        visible: '1,3',
        order: 'PCI_BUS_ID',
      })
      expect(value(await pool.run(task(crashy, 'gpuEnv', 0)))).toEqual(before)
    })
  })

  test('tasks with other memory limits get workers with those limits, within the pool size', async () => {
    await withPool(2, async (pool) => {
      const outcomes = await Promise.all([
        ...[0, 1, 2].map((i) => pool.run(task(basic, 'echo', i, { memoryMB: 256 }))),
        ...[3, 4, 5].map((i) => pool.run(task(basic, 'echo', i, { memoryMB: 512 }))),
        ...[6, 7].map((i) => pool.run(task(basic, 'echo', i))),
      ])
      expect(outcomes.map(value)).toEqual([0, 1, 2, 3, 4, 5, 6, 7])
      expect(pool.stats().workers).toBeLessThanOrEqual(2)
    })
  })

  test('inputs that are views into bigger buffers arrive as just their bytes', async () => {
    await withPool(1, async (pool) => {
      const encoded = encodeValue('inside')
      const big = new Uint8Array(1 << 20)
      big.set(encoded, 1000)
      const view = big.subarray(1000, 1000 + encoded.byteLength)
      expect(value(await pool.run({ ...task(basic, 'echo', 0), input: view }))).toBe('inside')
      expect(big.byteLength).toBe(1 << 20)
    })
  })

  test('a worker that has loaded more than 32 bundles is replaced once idle', async () => {
    await withPool(1, async (pool) => {
      for (let i = 0; i < 33; i++) {
        const hash = await blobs.put(new TextEncoder().encode(`export const f = () => ${i}\n`))
        expect(value(await pool.run(task(hash, 'f', 0)))).toBe(i)
        expect(pool.stats().workers).toBe(i < 32 ? 1 : 0)
      }
      expect(value(await pool.run(task(basic, 'echo', 'fresh')))).toBe('fresh')
    })
  })

  test('a quick function (2-6 ms) keeps two tasks in flight on a worker, so it starts the next by itself', async () => {
    await withPool(1, async (pool) => {
      // The pool learns the function's cost (a moving average; the first call is slower).
      for (let i = 0; i < 16; i++) value(await pool.run(task(basic, 'sleep', 2)))
      const all = [0, 1, 2].map(() => pool.run(task(basic, 'sleep', 2)))
      await Promise.resolve() // the pump runs in a microtask
      expect(pool.stats()).toMatchObject({ workers: 1, inFlight: 2, queued: 1 })
      expect((await Promise.all(all)).map(value)).toEqual([2, 2, 2])
    })
  })

  for (const kind of ['sleeps', 'spins (its event loop blocked)'] as const) {
    test(`a quick task queued behind one that runs long is taken back for an idle worker: the long one ${kind}`, async () => {
      const spin = kind !== 'sleeps'
      const file = join(dir, `behind-${spin}`)
      const run = (tag: string, ms: number) => pool.run(task(tally, 'tally', { file, tag, ms, spin }))
      const pool = new WorkerPool({ size: 2 })
      try {
        // A 2 ms function: each worker holds two (the one it runs and the next).
        for (let i = 0; i < 16; i++) value(await run('warm', 2))
        await Promise.all([run('warm', 2), run('warm', 2)]) // both workers started
        const t0 = performance.now()
        const long = run('long', 600)
        const behind = run('behind', 1).then(() => performance.now() - t0)
        const others = [run('a', 1), run('b', 1)]
        await Promise.resolve() // the pump runs in a microtask
        expect(pool.stats()).toMatchObject({ workers: 2, queued: 0, inFlight: 4 })
        // Before: 'behind' waited out the long task on its worker (~600 ms).
        expect(await behind).toBeLessThan(300)
        expect(pool.stats().revoked).toBe(1)
        await Promise.all([long, ...others])
        const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== 'warm' && l !== '')
        expect(lines.sort()).toEqual(['a', 'b', 'behind', 'long'])
      } finally {
        await pool.close()
      }
    })
  }

  test('tasks are not taken back for an idle worker of another heap limit (it is not replaced for them)', async () => {
    await withPool(2, async (pool) => {
      const sleep = (ms: number, memoryMB: number) => pool.run(task(basic, 'sleep', ms, { memoryMB }))
      for (let i = 0; i < 10; i++) value(await sleep(3, 256))
      for (let i = 0; i < 10; i++) value(await sleep(3, 0))
      const other = sleep(30, 0)
      await new Promise((r) => setTimeout(r, 1))
      const long = sleep(300, 256)
      const behind = sleep(3, 256) // queued behind the long one on the 256 MB worker
      value(await other) // the default worker idles from here on
      await new Promise((r) => setTimeout(r, 10))
      const t0 = performance.now()
      value(await sleep(1, 0))
      // Before: the idle default worker was retired for a 256 MB one; this task waited for a new worker.
      expect(performance.now() - t0).toBeLessThan(100)
      await Promise.all([long, behind])
      expect(pool.stats()).toMatchObject({ workers: 2, revoked: 0 })
    })
  })

  test('tasks taken back from busy workers run exactly once, whatever the timing', async () => {
    const file = join(dir, 'exactly-once')
    await withPool(3, async (pool) => {
      const durations = [0, 0, 1, 2, 3, 5, 8, 20]
      let n = 0
      const runOne = (i: number) => {
        const tag = `t${n++}`
        const input = { file, tag, ms: durations[(i * 7 + n) % durations.length], spin: n % 3 === 0 }
        return pool.run(task(tally, 'tally', input)).then((o) => expect(value(o)).toBe(tag))
      }
      for (let round = 0; round < 40; round++)
        await Promise.all(Array.from({ length: 10 }, (_, i) => runOne(i)))
      const lines = (await readFile(file, 'utf8')).split('\n').filter((l) => l !== '')
      expect(lines.length).toBe(n)
      expect(new Set(lines).size).toBe(n)
      expect(pool.stats().revoked).toBeGreaterThan(0)
      expect(pool.stats()).toMatchObject({ queued: 0, inFlight: 0 })
    })
  })

  test('tiny tasks fed one per finished task (as the scheduler does) still travel in batches', async () => {
    await withPool(2, async (pool) => {
      await warm(pool, basic, 'noop', 0)
      const before = pool.stats()
      // 128 outstanding (64 per slot, the scheduler's depth for tiny tasks); each end starts one more.
      let left = 20_000
      const one = (): Promise<void> =>
        pool.run(task(basic, 'noop', 0)).then((o) => {
          expect(o.status).toBe('ok')
          return left-- > 0 ? one() : undefined
        })
      await Promise.all(Array.from({ length: 128 }, one))
      const after = pool.stats()
      const perBatch = (after.batchedTasks - before.batchedTasks) / (after.batches - before.batches)
      // Topped up at every result this was about 5 (a message each way per 5 tasks).
      expect(perBatch).toBeGreaterThan(12)
    })
  })

  test('20,000 tiny tasks through two workers', async () => {
    await withPool(2, async (pool) => {
      const input = encodeValue(1)
      const t0 = performance.now()
      const outcomes = await Promise.all(
        Array.from({ length: 20_000 }, () => pool.run({ ...task(basic, 'noop', 0), input })),
      )
      const seconds = (performance.now() - t0) / 1000
      expect(outcomes.every((o) => o.status === 'ok')).toBe(true)
      console.log(
        `pool: 20000 no-op tasks in ${seconds.toFixed(2)} s (${Math.round(20_000 / seconds)}/s, cold start included)`,
      )
    })
  })
})
