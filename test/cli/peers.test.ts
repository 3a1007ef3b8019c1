/** `gridnode peers` shows this node too, first and marked (a stand-in daemon API answers). */
import { afterEach, describe, expect, it } from 'vitest'
import { type FakeDaemon, fakeDaemon } from '../client/fake-daemon.ts'
import { runCli } from '../integration/harness.ts'

const daemons: FakeDaemon[] = []
afterEach(() => {
  for (const d of daemons.splice(0)) d.close()
})

const SELF = '12D3KooWSelfSelfSelfSelfSelfSelfSelfSelfSelfAAAAAA'
const OTHER = '12D3KooWOtherOtherOtherOtherOtherOtherOtherBBBBBB'

describe('gridnode peers', () => {
  it('lists this node first, marked, then the other members', async () => {
    const d = await fakeDaemon()
    daemons.push(d)
    d.other = (req, res) => {
      const json = (v: unknown) => {
        res.writeHead(200, { 'content-type': 'application/json' })
        res.end(JSON.stringify(v))
      }
      if (req.url === '/v1/status') {
        const capacity = {
          slots: 4,
          freeSlots: 3,
          memoryTotalMB: 8192,
          memoryFreeMB: 4096,
          load1: 0.5,
          gpus: [],
        }
        json({ peerId: SELF, capacity })
        return true
      }
      if (req.url === '/v1/peers') {
        json([
          {
            peerId: OTHER,
            version: '0.1.0',
            cpus: 2,
            slots: 2,
            freeSlots: 2,
            running: 0,
            ready: 0,
            memoryTotalMB: 2048,
            memoryFreeMB: 1024,
            load1: 0.1,
            gpus: [],
            lastSeenMs: 300,
            rttMs: 1,
            connected: true,
          },
        ])
        return true
      }
      return false
    }
    const r = await runCli(['peers', '--data-dir', d.dataDir])
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines[1]).toMatch(/^12D3Ko…AAAAAA \(this node\)\s+3\/4\s/)
    expect(lines[2]).toMatch(/^12D3Ko…BBBBBB\s+2\/2\s/)
    const json = await runCli(['peers', '--json', '--data-dir', d.dataDir])
    expect(JSON.parse(json.stdout).map((p: { peerId: string }) => p.peerId)).toEqual([OTHER])
  })

  it('on a revoked node, says so instead of suggesting a network problem', async () => {
    // Before, a revoked node's `peers` said "is a --bootstrap peer or mDNS reachable?".
    const d = await fakeDaemon()
    daemons.push(d)
    const capacity = { slots: 1, freeSlots: 1, memoryTotalMB: 1024, memoryFreeMB: 512, load1: 0, gpus: [] }
    d.other = (req, res) => {
      const body =
        req.url === '/v1/status'
          ? { peerId: SELF, capacity, membership: { revokedAt: '2026-12-01T10:00:00.000Z' } }
          : req.url === '/v1/peers'
            ? []
            : undefined
      if (body === undefined) return false
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify(body))
      return true
    }
    const r = await runCli(['peers', '--data-dir', d.dataDir])
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('REVOKED     this node was revoked from the mesh at 2026-12-01T10:00:00.000Z')
    expect(r.stdout).not.toContain('mDNS')
  })
})
