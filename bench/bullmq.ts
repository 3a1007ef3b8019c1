/**
 * BullMQ (a devDependency, never shipped) beside gridnode and piscina in `npm run bench -- peers`,
 * on PEERS.md's workloads, when `redis-server` is on PATH (Debian: `apt-get install
 * redis-server`). A private Redis on a free loopback port, no persistence; workers are separate
 * Node processes running the same task functions (bench/fixtures/bullmq-worker.ts), one task at
 * a time each, so "2 slots" is two worker processes; the submitter adds jobs in bulk and counts
 * completions through QueueEvents.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Queue, QueueEvents } from 'bullmq'
import { CPU_ROUNDS, CPU_TASKS, noopRates, percentiles, skewedDurations, warmThenMeasure } from './jobs.ts'

const WORKER = new URL('./fixtures/bullmq-worker.ts', import.meta.url).pathname

export function hasRedisServer(): boolean {
  try {
    execFileSync('redis-server', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
}

/** One round of BullMQ's figures: a (2 and 4 slots), b (2 slots), c (4 slots), d (2 slots). */
export async function bullmqRound(
  serialMs: number,
  bound: number,
  noops: number,
  singles: number,
): Promise<Record<string, number>> {
  const dir = mkdtempSync(join(tmpdir(), 'gridnode-bench-redis-'))
  const port = await freePort()
  const redis = spawn(
    'redis-server',
    ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  const f: Record<string, number> = {}
  try {
    await readyLine(redis, 'Ready to accept connections')
    let n = 0
    const mesh = async <T>(slots: number, run: (q: Queue, ev: QueueEvents) => Promise<T>): Promise<T> => {
      const name = `bench${n++}`
      const connection = { host: '127.0.0.1', port }
      const queue = new Queue(name, { connection, streams: { events: { maxLen: 50_000 } } })
      const events = new QueueEvents(name, { connection })
      await events.waitUntilReady()
      const workers = Array.from({ length: slots }, () =>
        spawn(process.execPath, [WORKER, String(port), name, '1'], { stdio: ['ignore', 'pipe', 'inherit'] }),
      )
      try {
        await Promise.all(workers.map((w) => readyLine(w, 'ready')))
        return await run(queue, events)
      } finally {
        for (const w of workers) w.kill('SIGTERM')
        await Promise.all(
          workers.map((w) => new Promise((r) => (w.exitCode !== null ? r(0) : w.once('exit', r)))),
        )
        await events.close()
        await queue.close()
      }
    }
    for (const slots of [2, 4]) {
      noopRates(
        f,
        `bullmq_${slots}slots`,
        await mesh(slots, (q, ev) =>
          warmThenMeasure(noops, () =>
            all(
              q,
              ev,
              'noop',
              Array.from({ length: noops }, (_, i) => i),
            ),
          ),
        ),
      )
    }
    const rt = await mesh(2, async (q, ev) => {
      const times: number[] = []
      for (let i = 0; i < singles * 2; i++) {
        const t = performance.now()
        await (await q.add('noop', { x: i })).waitUntilFinished(ev)
        if (i >= singles) times.push(performance.now() - t)
      }
      return percentiles(times)
    })
    f.b_bullmq_2slots_p50Ms = round3(rt.p50)
    f.b_bullmq_2slots_p99Ms = round3(rt.p99)
    f.c_bullmq_4slots_ratio = await mesh(4, async (q, ev) => {
      await all(
        q,
        ev,
        'sleep',
        Array.from({ length: 8 }, () => 30),
      )
      const t0 = performance.now()
      await all(q, ev, 'sleep', skewedDurations())
      return round3((performance.now() - t0) / bound)
    })
    f.d_bullmq_2slots_share = await mesh(2, async (q, ev) => {
      await all(
        q,
        ev,
        'shaChain',
        Array.from({ length: 8 }, () => CPU_ROUNDS),
      )
      const t0 = performance.now()
      await all(
        q,
        ev,
        'shaChain',
        Array.from({ length: CPU_TASKS }, () => CPU_ROUNDS),
      )
      return round3(serialMs / 2 / (performance.now() - t0))
    })
  } finally {
    redis.kill('SIGTERM')
    await new Promise((r) => (redis.exitCode !== null ? r(0) : redis.once('exit', r)))
    rmSync(dir, { recursive: true, force: true })
  }
  return f
}

/** Adds one job per input (in order, in bulk) and resolves once every one completed. */
async function all(q: Queue, ev: QueueEvents, name: string, inputs: unknown[]): Promise<void> {
  let left = inputs.length
  const done = Promise.withResolvers<void>()
  const onDone = () => {
    if (--left === 0) done.resolve()
  }
  const onFailed = ({ failedReason }: { failedReason: string }) => done.reject(new Error(failedReason))
  ev.on('completed', onDone)
  ev.on('failed', onFailed)
  try {
    for (let i = 0; i < inputs.length; i += 1000)
      await q.addBulk(
        inputs.slice(i, i + 1000).map((x) => ({ name, data: { x }, opts: { removeOnComplete: true } })),
      )
    await done.promise
  } finally {
    ev.off('completed', onDone)
    ev.off('failed', onFailed)
  }
}

function readyLine(p: ChildProcess, text: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => reject(new Error(`no "${text}" within 20 s`)), 20_000)
    p.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes(text)) {
        clearTimeout(timer)
        resolve()
      }
    })
    p.once('exit', (code) => reject(new Error(`exited (${code}) before "${text}"`)))
  })
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer()
    s.once('error', reject)
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number }
      s.close(() => resolve(port))
    })
  })
}

function round3(x: number): number {
  return Number(x.toFixed(3))
}
