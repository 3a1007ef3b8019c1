/**
 * `GET /v1/jobs/:id/events` as fast as its client reads. Each stream used to write every stored
 * result of its job at once, and every later event, whether or not its client read: ten local
 * clients that opened the stream of a finished job with 50 MB of results and never read held
 * +700 MB of the daemon. Now a stream stops writing results past a high-water mark and catches
 * up from the store once drained; a slow reader still gets every result once, then `finished`.
 */
import { readFileSync } from 'node:fs'
import { type Socket, connect as tcp } from 'node:net'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Grid } from '../../src/client/index.ts'
import { TestMesh, type TestNode } from './harness.ts'

const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024
const BIG = new URL('./fixtures/big-values.ts', import.meta.url)
const TASKS = 100

describe('job event streams and slow readers', () => {
  const mesh = new TestMesh('events-backpressure')
  let node: TestNode
  let grid: Grid
  let id: string
  let open: () => Socket

  beforeAll(async () => {
    node = await mesh.add('a', { cpus: 2 })
    grid = await connect({ dataDir: node.dataDir })
    const job = grid.map<number, string>(
      BIG,
      'big',
      Array.from({ length: TASKS }, () => 500_000),
    )
    expect(await job.results()).toHaveLength(TASKS)
    id = await job.id
    const token = readFileSync(join(node.dataDir, 'api.token'), 'utf8').trim()
    const { url } = JSON.parse(readFileSync(join(node.dataDir, 'api.json'), 'utf8')) as { url: string }
    const { hostname, port } = new URL(url)
    open = () => {
      const s = tcp({ host: hostname, port: Number(port) })
      s.on('error', () => {})
      s.write(
        `GET /v1/jobs/${id}/events HTTP/1.1\r\nHost: ${hostname}:${port}\r\nAuthorization: Bearer ${token}\r\n\r\n`,
      )
      return s
    }
  }, 90_000)
  afterAll(() => mesh.stopAll())

  it('holds a bounded amount for clients that never read', async () => {
    const pid = node.proc!.pid!
    await new Promise((r) => setTimeout(r, 1000))
    const before = rssMiB(pid)
    const sockets = Array.from({ length: 10 }, () => {
      const s = open()
      s.pause()
      return s
    })
    let peak = before
    for (let i = 0; i < 24; i++) {
      await new Promise((r) => setTimeout(r, 250))
      peak = Math.max(peak, rssMiB(pid))
    }
    for (const s of sockets) s.destroy()
    // Each stream: its high-water mark and a page; 10 x the job's 67 MB of base64 before.
    expect(peak - before).toBeLessThan(150)
  }, 60_000)

  it('gives a reader that falls behind every result once, then finished', async () => {
    const s = open()
    s.pause()
    await new Promise((r) => setTimeout(r, 1500))
    let text = ''
    const seen: number[] = []
    const events: string[] = []
    await new Promise<void>((done, fail) => {
      s.setEncoding('utf8')
      s.on('data', (chunk: string) => {
        text += chunk
        for (let end = text.indexOf('\n\n'); end >= 0; end = text.indexOf('\n\n')) {
          const block = text.slice(0, end)
          text = text.slice(end + 2)
          const event = /^event: (.*)$/m.exec(block)?.[1]
          const data = /^data: (.*)$/m.exec(block)?.[1]
          if (event === undefined || data === undefined) continue
          events.push(event)
          if (event === 'results')
            for (const r of JSON.parse(data) as Array<{ index: number }>) seen.push(r.index)
          if (event === 'finished') done()
        }
      })
      s.on('close', () => fail(new Error(`closed after ${seen.length} results`)))
      s.resume()
    })
    s.destroy()
    expect(seen).toHaveLength(TASKS)
    expect(new Set(seen).size).toBe(TASKS)
    expect(events.at(-1)).toBe('finished')
  }, 60_000)

  it('still serves the library, results and all', async () => {
    const job = grid.map<number, number>(new URL('./fixtures/work.ts', import.meta.url), 'square', [1, 2, 3])
    expect(await job.results()).toEqual([1, 4, 9])
  }, 30_000)
})
