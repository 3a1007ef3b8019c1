/**
 * A stand-in for the daemon's control API, for library and CLI tests that need
 * no mesh: it records submitted jobs (decoded), answers them with ids, and
 * lets the test script each job's event stream.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { decodeValue } from '../../src/executor/values.ts'

export interface SubmittedJob {
  id: string
  body: Record<string, unknown>
  wait: boolean
}

export interface FakeDaemon {
  dataDir: string
  server: Server
  jobs: SubmittedJob[]
  /** Called for GET /v1/jobs/<id>/events: write SSE lines to `res` (default: a finished job at once). */
  events: (id: string, res: ServerResponse) => void
  /** Any other request; return true when handled. */
  other?: (req: IncomingMessage, res: ServerResponse, body: Buffer) => boolean
  close(): void
}

export function sse(res: ServerResponse, event: string, data: unknown): void {
  res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
}

export async function fakeDaemon(): Promise<FakeDaemon> {
  let n = 0
  const d: FakeDaemon = {
    dataDir: mkdtempSync(join(tmpdir(), 'gridnode-fake-')),
    server: undefined as unknown as Server,
    jobs: [],
    events: (id, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      sse(res, 'finished', { status: 'done', job: id, total: 0, done: 0, failed: 0, running: 0, nodes: 0 })
      res.end()
    },
    close() {
      this.server.closeAllConnections()
      this.server.close()
    },
  }
  d.server = createServer((req, res) => {
    const chunks: Buffer[] = []
    req.on('data', (c: Buffer) => chunks.push(c))
    req.on('end', () => {
      const body = Buffer.concat(chunks)
      const url = new URL(req.url ?? '/', 'http://x')
      const json = (v: unknown, status = 200) => {
        res.writeHead(status, { 'content-type': 'application/json' })
        res.end(JSON.stringify(v))
      }
      if (d.other?.(req, res, body)) return
      if (req.method === 'GET' && url.pathname === '/v1/status') return json({ peerId: 'self' })
      if (req.method === 'POST' && url.pathname === '/v1/blobs') return json({ hash: 'a'.repeat(64) })
      if (req.method === 'POST' && url.pathname === '/v1/jobs') {
        const decoded = decodeValue(new Uint8Array(body)) as Record<string, unknown>
        const id = typeof decoded.id === 'string' ? decoded.id : `job-${++n}`
        d.jobs.push({ id, body: decoded, wait: url.searchParams.get('wait') === '1' })
        return json({ id, total: (decoded.tasks as unknown[]).length })
      }
      const ev = /^\/v1\/jobs\/([^/]+)\/events$/.exec(url.pathname)
      if (req.method === 'GET' && ev) return d.events(decodeURIComponent(ev[1]), res)
      json({ error: { code: 'GN_HTTP', message: `fake daemon: no ${req.method} ${url.pathname}` } }, 404)
    })
  })
  await new Promise<void>((r) => d.server.listen(0, '127.0.0.1', r))
  const { port } = d.server.address() as AddressInfo
  writeFileSync(
    join(d.dataDir, 'api.json'),
    JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid, peerId: 'self' }),
  )
  writeFileSync(join(d.dataDir, 'api.token'), 't'.repeat(43))
  return d
}
