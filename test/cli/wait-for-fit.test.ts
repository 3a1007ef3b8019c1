/**
 * A job no node can fit: `gridnode map` says why at once on stderr (and in
 * --json), and --wait-for-fit ends it with exit 1. The CLI runs for real
 * against a stand-in daemon API that reports the job blocked.
 */
import { writeFileSync } from 'node:fs'
import type { ServerResponse } from 'node:http'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type FakeDaemon, fakeDaemon, sse } from '../client/fake-daemon.ts'
import { runCli } from '../integration/harness.ts'

const daemons: FakeDaemon[] = []
afterEach(() => {
  for (const d of daemons.splice(0)) d.close()
})

const REASON = 'needs 4 CPU slots; the largest node has 2'

async function blockedDaemon(): Promise<FakeDaemon & { cancelled: string[] }> {
  const d = Object.assign(await fakeDaemon(), { cancelled: [] as string[] })
  daemons.push(d)
  const streams = new Map<string, ServerResponse>()
  d.events = (id, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    sse(res, 'progress', { job: id, total: 1, done: 0, failed: 0, running: 0, nodes: 0 })
    sse(res, 'blocked', { reason: REASON })
    streams.set(id, res)
  }
  d.other = (req, res) => {
    const m = /^\/v1\/jobs\/([^/]+)\/cancel$/.exec(req.url ?? '')
    if (req.method !== 'POST' || !m) return false
    d.cancelled.push(m[1])
    const s = streams.get(m[1])
    if (s) {
      sse(s, 'finished', {
        status: 'cancelled',
        job: m[1],
        total: 1,
        done: 0,
        failed: 0,
        running: 0,
        nodes: 0,
      })
      s.end()
    }
    res.writeHead(200, { 'content-type': 'application/json' })
    res.end(JSON.stringify({ id: m[1], status: 'cancelled' }))
    return true
  }
  writeFileSync(join(d.dataDir, 'task.mjs'), 'export default (x) => x\n')
  return d
}

describe('a job no node can fit', () => {
  it('says why on stderr at once, and --wait-for-fit cancels it with exit 1', async () => {
    const d = await blockedDaemon()
    const started = Date.now()
    const r = await runCli(
      [
        'map',
        join(d.dataDir, 'task.mjs'),
        '--inputs',
        '-',
        '--cpu',
        '4',
        '--wait-for-fit',
        '1s',
        '--data-dir',
        d.dataDir,
      ],
      '1\n',
    )
    expect(r.code).toBe(1)
    expect(r.stderr).toContain(
      `gridnode: job job-1 cannot run yet: ${REASON}; waiting up to 1.0 s for a node that fits`,
    )
    expect(r.stderr).toContain('no node could fit it within --wait-for-fit')
    expect(r.stderr).not.toMatch(/at .*\.ts:\d+/)
    expect(d.cancelled).toEqual(['job-1'])
    expect(Date.now() - started).toBeGreaterThanOrEqual(1000)
  })

  it('puts the reason in --json output too', async () => {
    const d = await blockedDaemon()
    const r = await runCli(
      [
        'map',
        join(d.dataDir, 'task.mjs'),
        '--inputs',
        '-',
        '--json',
        '--wait-for-fit',
        '300ms',
        '--data-dir',
        d.dataDir,
      ],
      '1\n',
    )
    expect(r.code).toBe(1)
    expect(r.stdout.split('\n')[0]).toBe(JSON.stringify({ blocked: REASON }))
  })
})
