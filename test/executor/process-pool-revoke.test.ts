/**
 * Taking queued tasks back from a process worker (the sandbox pool's protocol, here over plain
 * process workers: no bubblewrap needed): behind a task that blocks the worker's event loop, and
 * with a suspend landing while the worker's answer is on its way.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { decodeValue, encodeValue } from '../../src/domain/values.ts'
import { ProcessHost } from '../../src/executor/process-host.ts'
import { SandboxPool } from '../../src/executor/sandbox/sandbox-pool.ts'
import type { TaskOutcome } from '../../src/scheduler/types.ts'

let dir: string
let bundlePath: string

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gridnode-procpool-'))
  bundlePath = join(dir, 'tasks.mjs')
  await writeFile(
    bundlePath,
    `export function busy(ms) { const end = performance.now() + ms; while (performance.now() < end) {} return ms }
export async function sleep(ms) { await new Promise((r) => setTimeout(r, ms)); return ms }
`,
  )
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

function value(o: TaskOutcome): unknown {
  if (o.status !== 'ok') throw new Error(`expected ok, got ${JSON.stringify(o)}`)
  return decodeValue(o.value)
}

async function withPool(body: (run: Run, pool: SandboxPool) => Promise<void>): Promise<void> {
  const host = new ProcessHost({ baseDir: join(dir, `procs-${Math.random().toString(36).slice(2)}`) })
  const pool = new SandboxPool({ size: 2, host, spares: 0 })
  const run: Run = (exportName, ms, ref) =>
    pool.run(
      {
        job: 'owner/job',
        bundle: 'a'.repeat(64),
        bundlePath,
        url: '',
        exportName,
        input: encodeValue(ms),
        depValues: [],
        timeoutMs: 10_000,
        memoryMB: 0,
      },
      undefined,
      ref,
    )
  try {
    // Both workers bound to the job; a 3 ms function, so each holds two.
    for (let round = 0; round < 6; round++) await Promise.all([run('sleep', 3), run('sleep', 3)])
    await body(run, pool)
  } finally {
    await pool.close()
    await host.close()
  }
}

type Run = (exportName: string, ms: number, ref?: { id: number }) => Promise<TaskOutcome>

describe('process workers: taking queued tasks back', () => {
  test('behind a task that blocks the event loop, the worker reads the take-back before its next task', async () => {
    await withPool(async (run, pool) => {
      // The worker learns of the take-back only when the long task ends (its loop was blocked);
      // it must read it then, before starting the task queued behind, not after its whole queue.
      for (let round = 0; round < 6; round++) await Promise.all([run('busy', 3), run('busy', 3)])
      // One worker gets [500, 300], the other [1, 1] and then idles.
      const all = [run('busy', 500), run('busy', 300), run('busy', 1), run('busy', 1)]
      expect((await Promise.all(all)).map(value)).toEqual([500, 300, 1, 1])
      expect(pool.stats()).toMatchObject({ revoked: 1, inFlight: 0 })
    })
  })

  test('a suspend landing while the answer is on its way does not leave the worker stopped', async () => {
    await withPool(async (run, pool) => {
      // When the worker's `revoked` frame arrives, the owner suspends the queued task first.
      let target: { id: number } | undefined
      const p = pool as unknown as { onData(w: unknown, chunk: Buffer): void }
      const onData = p.onData.bind(pool)
      p.onData = (w, chunk) => {
        if (target !== undefined && chunk.length >= 5 && chunk[4] === 3) {
          pool.suspend(target)
          target = undefined
        }
        onData(w, chunk)
      }
      const long = run('sleep', 300)
      const ref = { id: 0 }
      const behind = run('sleep', 1, ref)
      target = ref
      await Promise.all([run('sleep', 20), run('sleep', 20)])
      await new Promise((r) => setTimeout(r, 100))
      pool.resume(ref)
      expect(value(await behind)).toBe(1)
      // Before: the worker stayed stopped (SIGSTOP) and this never ended.
      const ended = await Promise.race([long, new Promise((r) => setTimeout(() => r('still stopped'), 5000))])
      expect(ended).not.toBe('still stopped')
      expect(value(ended as TaskOutcome)).toBe(300)
    })
  })
})
