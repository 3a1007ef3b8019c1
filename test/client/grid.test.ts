/**
 * The library's errors without a real daemon: connect() to no daemon, a gone
 * one, a hung one; typed errors rebuilt from the API's codes; a missing module.
 * A tiny HTTP server plays the daemon's API.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import {
  connect,
  DaemonClient,
  GridnodeError,
  ModuleNotFoundError,
  NoDaemonError,
  NoSuchJobError,
} from '../../src/client/index.ts'

const servers: Server[] = []
afterEach(() => {
  for (const s of servers.splice(0)) {
    s.closeAllConnections()
    s.close()
  }
})

/** The error a promise rejects with (and a failed test if it resolves). */
async function failure(p: Promise<unknown>): Promise<GridnodeError> {
  try {
    await p
  } catch (err) {
    return err as GridnodeError
  }
  throw new Error('expected a rejection')
}

/** A data dir whose api.json points at `handler`, as a running daemon's would. */
async function fakeDaemon(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler)
  servers.push(server)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  const { port } = server.address() as AddressInfo
  const dir = mkdtempSync(join(tmpdir(), 'gridnode-client-'))
  writeFileSync(
    join(dir, 'api.json'),
    JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid, peerId: 'x' }),
  )
  writeFileSync(join(dir, 'api.token'), 't'.repeat(43))
  return dir
}

describe('connect()', () => {
  it('says there is no daemon, naming the data dir and how to start one', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridnode-client-'))
    const err = await failure(connect({ dataDir: dir }))
    expect(err).toBeInstanceOf(NoDaemonError)
    expect(err.code).toBe('GN_NO_DAEMON')
    expect(err.message).toContain(dir)
    expect(err.message).toContain(`gridnode start --data-dir ${dir}`)
  })

  it('says so when the daemon that wrote api.json is gone', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'gridnode-client-'))
    writeFileSync(
      join(dir, 'api.json'),
      JSON.stringify({ url: 'http://127.0.0.1:9', pid: 2 ** 22 + 7, peerId: 'x' }),
    )
    writeFileSync(join(dir, 'api.token'), 't'.repeat(43))
    await expect(connect({ dataDir: dir })).rejects.toThrow(/pid \d+, is gone/)
  })

  it('gives up on a daemon that does not answer, after timeoutMs', async () => {
    const dir = await fakeDaemon(() => {})
    const started = Date.now()
    const err = await failure(connect({ dataDir: dir, timeoutMs: 200 }))
    expect(err).toBeInstanceOf(NoDaemonError)
    expect(err.message).toMatch(/did not answer within 200 ms/)
    expect(Date.now() - started).toBeLessThan(2000)
  })

  it('sends the bearer token and returns a grid when the daemon answers', async () => {
    let auth: string | undefined
    const dir = await fakeDaemon((req, res) => {
      auth = req.headers.authorization
      res.setHeader('content-type', 'application/json')
      res.end('{}')
    })
    const grid = await connect({ dataDir: dir })
    expect(grid.client.dataDir).toBe(dir)
    expect(auth).toBe(`Bearer ${'t'.repeat(43)}`)
  })
})

describe('errors from the API', () => {
  it('are rebuilt as typed errors from their code', async () => {
    const dir = await fakeDaemon((_req, res) => {
      res.statusCode = 404
      res.end(JSON.stringify({ error: { code: 'GN_NO_SUCH_JOB', message: 'no job x on this node' } }))
    })
    const grid = await connect({ dataDir: dir }).catch(() => undefined)
    expect(grid).toBeUndefined() // status answered 404 too
    const err = await failure(DaemonClient.open({ dataDir: dir }).request('GET', '/v1/jobs/x'))
    expect(err).toBeInstanceOf(NoSuchJobError)
    expect(err).toBeInstanceOf(GridnodeError)
    expect(err.message).toBe('no job x on this node')
  })

  it('keep an unknown code as a GridnodeError with that code', async () => {
    const dir = await fakeDaemon((_req, res) => {
      res.statusCode = 500
      res.end(JSON.stringify({ error: { code: 'GN_SOMETHING', message: 'broke' } }))
    })
    const err = await failure(DaemonClient.open({ dataDir: dir }).request('GET', '/v1/status'))
    expect(err.constructor).toBe(GridnodeError)
    expect(err.code).toBe('GN_SOMETHING')
  })
})

describe('grid.map()', () => {
  it('surfaces a missing module file through the job, before anything is sent', async () => {
    const requests: string[] = []
    const dir = await fakeDaemon((req, res) => {
      requests.push(`${req.method} ${req.url}`)
      res.end('{}')
    })
    const grid = await connect({ dataDir: dir })
    const job = grid.map(join(dir, 'nope.ts'), 'f', [1])
    await expect(job.results()).rejects.toBeInstanceOf(ModuleNotFoundError)
    await expect(job.id).rejects.toThrow(/module not found: .*nope\.ts/)
    // The channel's upgrade (this HTTP-only fake answers it like any request, so the client falls
    // back to HTTP), then connect()'s status check: no submit.
    expect(requests).toEqual(['GET /v1/channel', 'GET /v1/status'])
  })
})
