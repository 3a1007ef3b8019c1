/**
 * `npm run bench -- roundtrip`: where a single task's round trip goes. The p50 / p99 of
 * `grid.submit` of a no-op on one daemon x 2 slots, the CPU each thread spent per request
 * (Linux: each thread's `schedstat`, read before and after the measured requests; no
 * profiler, so nothing is slowed), and, in the same run, the floors of the three hops every
 * such request makes here: the client's request and the daemon's answer over loopback TCP
 * (a two-process ping-pong of the same size), the hand-off to a worker thread and back (a
 * postMessage ping-pong), and a one-row SQLite commit in the store's own settings (the
 * daemon makes two per single-task job: the job, then its result).
 */
import { fork } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { createServer, type Socket, connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DatabaseSync } from 'node:sqlite'
import { Worker } from 'node:worker_threads'
import { meshOf, submitter, timedSubmits } from './jobs.ts'

const TASKS = new URL('./fixtures/tasks.ts', import.meta.url)
/** Requests before the measured ones: the daemon's per-task path is compiled by then. */
const WARM = 2000
/** Bytes each way in the TCP floor: about a single no-op's submit frame and its answer. */
const FRAME_BYTES = 400
const FLOOR_ROUNDS = 5000

/** The measured round trip, each thread's CPU per request, and the floors, as bench figures. */
export async function roundTripBreakdown(count: number): Promise<Record<string, number | string>> {
  const f: Record<string, number | string> = {}
  const { mesh, nodes } = await meshOf('bench-rt', 1, 2)
  try {
    const grid = await submitter(nodes)
    for (let i = 0; i < WARM; i++) await grid.submit(TASKS, 'noop', [i])
    const daemon = nodes[0].proc?.pid
    // The daemons are this process's children: the client's figure is this process alone.
    const before = { client: threadCpu(process.pid, false), daemon: threadCpu(daemon, true) }
    const { p50, p99 } = await timedSubmits(grid, count)
    const after = { client: threadCpu(process.pid, false), daemon: threadCpu(daemon, true) }
    f.p50Ms = round3(p50)
    f.p99Ms = round3(p99)
    if (after.client === undefined || after.daemon === undefined) {
      f.cpuPerRequest = 'not measured (needs Linux /proc/<pid>/task/*/schedstat)'
    } else {
      for (const [who, b, a] of [
        ['client', before.client, after.client],
        ['daemon', before.daemon, after.daemon],
      ] as const) {
        let sum = 0
        for (const [thread, us] of perRequest(b!, a, count)) {
          f[`cpuUs_${who}_${thread}`] = Math.round(us)
          sum += us
        }
        f[`cpuUs_${who}_total`] = Math.round(sum)
      }
    }
  } finally {
    await mesh.stopAll()
  }
  const tcp = await tcpFloor()
  f.floorUs_tcpPingPong = Math.round(tcp.rtUs)
  f.floorUs_tcpPingPongCpuOneSide = Math.round(tcp.cpuUsClient)
  const worker = await workerFloor()
  f.floorUs_workerPingPong = Math.round(worker.rtUs)
  f.floorUs_workerPingPongCpuMain = Math.round(worker.cpuUsMain)
  f.floorUs_sqliteCommit = Math.round(sqliteFloor())
  // The least a request could take here if every line of JavaScript on its path were free.
  f.floorUs_sum = Math.round(f.floorUs_tcpPingPong + f.floorUs_workerPingPong + 2 * f.floorUs_sqliteCommit)
  f.p50AboveFloorsUs = Math.round((f.p50Ms as number) * 1000 - f.floorUs_sum)
  return f
}

/**
 * Nanoseconds on CPU so far of every thread of `pid` (and of its child processes, with
 * `children`: a daemon may re-execute itself with V8 flags), by thread name
 * (V8's helpers are all `V8Worker`, libuv's pool `libuv-worker`, a task thread
 * `gridnode-task`); undefined where /proc cannot say.
 */
function threadCpu(pid: number | undefined, children: boolean): Map<string, number> | undefined {
  if (pid === undefined) return undefined
  const byThread = new Map<string, number>()
  const visit = (p: number): boolean => {
    let tids: string[]
    try {
      tids = readdirSync(`/proc/${p}/task`)
    } catch {
      return false
    }
    for (const tid of tids) {
      try {
        const dir = `/proc/${p}/task/${tid}`
        const name = readFileSync(`${dir}/comm`, 'utf8').trim()
        const ns = Number(readFileSync(`${dir}/schedstat`, 'utf8').split(' ')[0])
        // A thread that ended between the two reads drops out of both sums the same way.
        byThread.set(`${name}#${p}/${tid}`, ns)
        if (!children) continue
        for (const child of readFileSync(`${dir}/children`, 'utf8').split(' ').filter(Boolean))
          visit(Number(child))
      } catch {
        // The thread has ended.
      }
    }
    return true
  }
  return visit(pid) ? byThread : undefined
}

/** Microseconds per request by thread name, from two threadCpu readings (threads seen in both). */
function perRequest(
  before: Map<string, number>,
  after: Map<string, number>,
  count: number,
): Map<string, number> {
  const out = new Map<string, number>()
  for (const [key, ns] of after) {
    const was = before.get(key)
    if (was === undefined) continue
    const name = key.slice(0, key.indexOf('#')).replace(/[^A-Za-z0-9]+/g, '_')
    out.set(name, (out.get(name) ?? 0) + (ns - was) / 1000 / count)
  }
  for (const [name, us] of out) if (us < 1) out.delete(name)
  return out
}

/** Two processes, one loopback TCP connection, FRAME_BYTES each way, one at a time. */
async function tcpFloor(): Promise<{ rtUs: number; cpuUsClient: number }> {
  const server = createServer((s: Socket) => {
    s.setNoDelay(true)
    s.on('data', (d) => s.write(d))
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  // The client is a child process, so the two ends are two processes as in a real request.
  const child = fork(new URL(import.meta.url), [], {
    env: { ...process.env, GRIDNODE_BENCH_TCP_FLOOR_PORT: String(port) },
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  })
  try {
    return await new Promise((resolve, reject) => {
      child.once('message', (m) => resolve(m as { rtUs: number; cpuUsClient: number }))
      child.once('exit', (code) => reject(new Error(`the TCP floor's client exited with ${code}`)))
    })
  } finally {
    child.kill()
    server.close()
  }
}

/** The TCP floor's client, run in the forked child: ping-pong, report the mean round trip. */
async function tcpFloorClient(port: number): Promise<void> {
  const s = tcpConnect(port, '127.0.0.1')
  s.setNoDelay(true)
  await new Promise<void>((r, j) => s.once('connect', r).once('error', j))
  const frame = Buffer.alloc(FRAME_BYTES, 7)
  const warm = FLOOR_ROUNDS / 5
  let got = 0
  let rounds = 0
  let t0 = 0
  let cpu0 = process.cpuUsage()
  await new Promise<void>((done) => {
    s.on('data', (d: Buffer) => {
      got += d.length
      if (got < FRAME_BYTES) return
      got -= FRAME_BYTES
      rounds++
      if (rounds === warm) {
        t0 = performance.now()
        cpu0 = process.threadCpuUsage?.() ?? process.cpuUsage()
      }
      if (rounds === warm + FLOOR_ROUNDS) return done()
      s.write(frame)
    })
    s.write(frame)
  })
  const rtUs = ((performance.now() - t0) * 1000) / FLOOR_ROUNDS
  const cpu = process.threadCpuUsage?.(cpu0) ?? process.cpuUsage(cpu0)
  process.send?.({ rtUs, cpuUsClient: (cpu.user + cpu.system) / FLOOR_ROUNDS })
  s.destroy()
}

/** This thread and a worker thread, one small message each way at a time (as a task's hand-off). */
async function workerFloor(): Promise<{ rtUs: number; cpuUsMain: number }> {
  const w = new Worker(
    "const { parentPort } = require('node:worker_threads'); parentPort.on('message', (m) => parentPort.postMessage(m))",
    { eval: true },
  )
  try {
    const msg = { type: 'run', ids: new Float64Array(1), input: new Uint8Array(16) }
    const round = () =>
      new Promise<void>((r) => {
        w.once('message', () => r())
        w.postMessage(msg)
      })
    for (let i = 0; i < FLOOR_ROUNDS / 5; i++) await round()
    const cpu0 = process.threadCpuUsage?.() ?? process.cpuUsage()
    const t0 = performance.now()
    for (let i = 0; i < FLOOR_ROUNDS; i++) await round()
    const rtUs = ((performance.now() - t0) * 1000) / FLOOR_ROUNDS
    const cpu = process.threadCpuUsage?.(cpu0) ?? process.cpuUsage(cpu0)
    return { rtUs, cpuUsMain: (cpu.user + cpu.system) / FLOOR_ROUNDS }
  } finally {
    await w.terminate()
  }
}

/** One row written and committed per transaction, with the job store's settings (src/node/store.ts). */
function sqliteFloor(): number {
  const dir = mkdtempSync(join(tmpdir(), 'gridnode-bench-sqlite-'))
  const db = new DatabaseSync(join(dir, 'floor.db'))
  try {
    db.exec('PRAGMA locking_mode = EXCLUSIVE')
    db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL;')
    db.exec(
      'CREATE TABLE t (job TEXT NOT NULL, idx INTEGER NOT NULL, v BLOB, PRIMARY KEY (job, idx)) WITHOUT ROWID',
    )
    const insert = db.prepare('INSERT INTO t (job, idx, v) VALUES (?, ?, ?)')
    const value = new Uint8Array(16)
    const one = (i: number) => {
      db.exec('BEGIN')
      insert.run(`job-${i}`, 0, value)
      db.exec('COMMIT')
    }
    for (let i = 0; i < FLOOR_ROUNDS / 5; i++) one(i)
    const t0 = performance.now()
    for (let i = 0; i < FLOOR_ROUNDS; i++) one(FLOOR_ROUNDS + i)
    return ((performance.now() - t0) * 1000) / FLOOR_ROUNDS
  } finally {
    db.close()
    rmSync(dir, { recursive: true, force: true })
  }
}

function round3(x: number): number {
  return Number(x.toFixed(3))
}

const floorPort = process.env.GRIDNODE_BENCH_TCP_FLOOR_PORT
if (floorPort !== undefined && process.send !== undefined) await tcpFloorClient(Number(floorPort))
