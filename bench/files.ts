/**
 * File figures with real daemons on loopback:
 * - fan-out: one input file (GRIDNODE_BENCH_FILE_MB, default 1024) used by a
 *   job on 4 daemons: time from submit until each of the 3 others holds it,
 *   as MB/s delivered in all, against raw loopback TCP sending the same
 *   bytes to 3 readers at once; plus the bytes each node served (the owner
 *   about one copy: the others serve each other the pieces they have);
 * - gather: 200 tasks each writing a 5 MB output, brought back to the
 *   submitter's --output-dir: wall time and MB/s.
 */
import { randomBytes } from 'node:crypto'
import { createWriteStream, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { createServer, connect as tcpConnect } from 'node:net'
import { loadavg } from 'node:os'
import { join } from 'node:path'
import { connect } from '../src/client/index.ts'
import { eventually, TestMesh, type TestNode } from '../test/integration/harness.ts'
import { benchBin } from './build.ts'
import { BENCH_SANDBOX } from './jobs.ts'

const MB = 1024 * 1024
const extraArgs = ['--sandbox', BENCH_SANDBOX]

interface FilesStats {
  servedBytes: number
  fetchedBytes: number
}
const stats = async (n: TestNode) => (await n.api<{ files: FilesStats }>('/v1/status')).files

async function meshOf(label: string, count: number): Promise<{ mesh: TestMesh; nodes: TestNode[] }> {
  const bin = await benchBin()
  const mesh = new TestMesh(label)
  const first = await mesh.add('n0', { cpus: 2, extraArgs, bin })
  const nodes = [first]
  for (let i = 1; i < count; i++)
    nodes.push(await mesh.add(`n${i}`, { cpus: 2, bootstrap: [first.addr], extraArgs, bin }))
  for (const n of nodes)
    await eventually(
      `${n.name} membership`,
      async () => (await n.api<unknown[]>('/v1/peers')).length === count - 1,
      30_000,
    )
  return { mesh, nodes }
}

async function writeRandom(path: string, bytes: number): Promise<void> {
  const out = createWriteStream(path)
  const block = randomBytes(4 * MB)
  for (let left = bytes; left > 0; left -= block.length) {
    const piece = left >= block.length ? block : block.subarray(0, left)
    if (!out.write(piece)) await new Promise<void>((r) => out.once('drain', () => r()))
  }
  await new Promise<void>((resolve, reject) =>
    out.end((err?: Error | null) => (err ? reject(err) : resolve())),
  )
}

/** MB/s of `bytes` sent by one loopback TCP server to `readers` clients at once. */
async function rawTcp(bytes: number, readers: number): Promise<number> {
  const block = randomBytes(MB)
  const server = createServer((sock) => {
    let left = bytes
    const pump = () => {
      while (left > 0) {
        const piece = left >= block.length ? block : block.subarray(0, left)
        left -= piece.length
        if (!sock.write(piece)) return void sock.once('drain', pump)
      }
      sock.end()
    }
    pump()
  })
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const port = (server.address() as { port: number }).port
  const t0 = performance.now()
  await Promise.all(
    Array.from(
      { length: readers },
      () =>
        new Promise<void>((resolve, reject) => {
          const s = tcpConnect(port, '127.0.0.1')
          s.on('data', () => {})
          s.on('end', resolve)
          s.on('error', reject)
        }),
    ),
  )
  const seconds = (performance.now() - t0) / 1000
  server.close()
  return Math.round((readers * bytes) / MB / seconds)
}

export async function filesBench(): Promise<Record<string, number | string>> {
  const sizeMB = Number(process.env.GRIDNODE_BENCH_FILE_MB ?? 1024)
  const size = sizeMB * MB
  const { mesh, nodes } = await meshOf('bench-files', 4)
  // The machine may be shared: the 1-minute load average before and after each part.
  const load = () => loadavg()[0].toFixed(1)
  const figures: Record<string, number | string> = { loadBefore: load() }
  try {
    const [owner, ...others] = nodes
    const work = join(mesh.root, 'work')
    mkdirSync(work, { recursive: true })
    const big = join(work, 'big.bin')
    await writeRandom(big, size)
    const grid = await connect({ dataDir: owner.dataDir })

    // Upload and hash on the owner, outside the fan-out's clock: a tiny job with the file.
    const tu = performance.now()
    await grid.run(['true'], ['0'], { files: [big] }).results()
    figures.uploadAndHashMBps = Math.round(sizeMB / ((performance.now() - tu) / 1000))

    const before = await Promise.all(nodes.map(stats))
    const t0 = performance.now()
    // Long tasks, so that every node takes some (the owner alone cannot finish the job first);
    // the job is cancelled once the file is everywhere.
    const inputs = Array.from({ length: 12 }, (_, i) => String(i))
    const job = grid.run(['sh', '-c', 'test -s big.bin && sleep 600'], inputs, { files: [big] })
    const done = new Map<string, number>()
    await eventually(
      'every other node to hold the file',
      async () => {
        const now = await Promise.all(others.map(stats))
        now.forEach((s, i) => {
          if (!done.has(others[i].name) && s.fetchedBytes - before[i + 1].fetchedBytes >= size)
            done.set(others[i].name, performance.now())
        })
        return done.size === others.length
      },
      600_000,
      50,
    )
    const seconds = (Math.max(...done.values()) - t0) / 1000
    await job.cancel()
    await job.done()
    const after = await Promise.all(nodes.map(stats))
    figures.fanoutFileMB = sizeMB
    figures.fanoutTo3Seconds = Number(seconds.toFixed(2))
    figures.fanoutDeliveredMBps = Math.round((3 * sizeMB) / seconds)
    figures.fanoutServedMBByNode = nodes
      .map((n, i) => `${n.name}=${Math.round((after[i].servedBytes - before[i].servedBytes) / MB)}`)
      .join(' ')
    figures.loadAfterFanout = load()
    figures.rawLoopbackTcpTo3MBps = await rawTcp(size, 3)
    rmSync(big, { force: true })

    // Gather: 200 outputs of 5 MB into the submitter's output dir.
    const outDir = join(work, 'gathered')
    const tasks = Array.from({ length: 200 }, (_, i) => String(i))
    const tg = performance.now()
    const gather = grid.run(['sh', '-c', 'head -c 5242880 /dev/urandom > out-$0.bin'], tasks, {
      outputs: ['out-*.bin'],
      outputDir: outDir,
    })
    await gather.results()
    const gatherSeconds = (performance.now() - tg) / 1000
    const ranOn = (await grid.results(await gather.id)).map((r) => r.ranOn)
    figures.gatherTasksByNode = nodes
      .map((n) => `${n.name}=${ranOn.filter((p) => p === n.peerId).length}`)
      .join(' ')
    if (readdirSync(outDir).length !== 200) throw new Error('outputs missing')
    figures.gather200x5MBSeconds = Number(gatherSeconds.toFixed(2))
    figures.gatherMBps = Math.round(1000 / gatherSeconds)
    figures.loadAfterGather = load()
  } finally {
    await mesh.stopAll()
  }
  return figures
}
