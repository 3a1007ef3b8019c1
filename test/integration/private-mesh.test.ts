/**
 * A private mesh, as a stranger, a holder of a leaked swarm key, a new
 * machine and an admin would meet it: real daemons and real attacking
 * processes on loopback.
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, REPO, runCli, runProcess, TestMesh, type TestNode } from './harness.ts'

const OUTSIDER = join(REPO, 'test', 'integration', 'fixtures', 'outsider.ts')

interface OutsiderReport {
  connected: boolean
  steal?: string
  dht?: string
  gossip?: string
  adverts?: number
  hungUp?: boolean
}

async function outsider(addr: string, mesh: string, swarmKey?: string): Promise<OutsiderReport> {
  const args = [OUTSIDER, addr, mesh, ...(swarmKey ? [swarmKey] : [])]
  const r = await runProcess(process.execPath, args)
  expect(r.code, r.stderr).toBe(0)
  return JSON.parse(r.stdout.trim().split('\n').pop()!)
}

interface MembersJson {
  self: { peer: string; expires: string | null }
  members: Array<{ peer: string; expires: string; connected: boolean }>
  revocations: Array<{ peer: string }>
}

describe('a private mesh', () => {
  const mesh = new TestMesh('private')
  let a: TestNode
  let b: TestNode

  beforeAll(async () => {
    a = await mesh.add('a', { cpus: 1, mesh: 'lab' })
    // Certificates live 8 s here, so renewal happens during the test.
    writeFileSync(join(a.dataDir, 'config.json'), JSON.stringify({ certValidityMs: 8000 }))
    await a.stop()
    await a.start()
    b = await mesh.add('b', { cpus: 1 })
  }, 60_000)
  afterAll(() => mesh.stopAll())

  it('keeps out a node without the swarm key: no connection forms', async () => {
    const r = await outsider(a.addr, 'lab')
    expect(r.connected).toBe(false)
    const status = await a.api<{ connections: Array<{ peerId: string }> }>('/v1/status')
    expect(status.connections.map((c) => c.peerId)).toEqual([b.peerId])
  })

  it('gives a holder of the swarm key alone no gridnode, DHT or gossip answer, and hangs up', async () => {
    const r = await outsider(a.addr, 'lab', join(a.dataDir, 'swarm.key'))
    expect(r.connected).toBe(true)
    expect(r.steal).not.toBe('answered')
    expect(r.dht).not.toBe('answered')
    expect(r.gossip).not.toBe('answered')
    expect(r.adverts).toBe(0)
    expect(r.hungUp).toBe(true)
    const members = await a.api<MembersJson>('/v1/members')
    expect(members.members.map((m) => m.peer)).toEqual([b.peerId])
  }, 40_000)

  it('runs a job across the founder and a machine that joined by invitation', async () => {
    // Each command prints its scratch directory: in b's data dir when b (the submitter) ran it, the
    // sandbox's /work when a ran it (tasks from another node run sandboxed).
    const r = await runCli(
      ['run', '--data-dir', b.dataDir, '--json', '--', 'sh', '-c', 'sleep 0.3; echo $0 $(pwd)'],
      '1\n2\n3\n4\n5\n6\n',
    )
    expect(r.code, r.stderr).toBe(0)
    const lines = r.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l).stdout.trim().split(' '))
    expect(lines.map((l) => l[0]).sort()).toEqual(['1', '2', '3', '4', '5', '6'])
    const ranOn = new Set(lines.map((l) => (l[1] === '/work' ? 'a' : l[1].startsWith(b.dataDir) ? 'b' : '?')))
    expect([...ranOn].sort()).toEqual(['a', 'b'])
  })

  it('refuses an expired, a reused, a foreign and a malformed token with one line, exit 2, nothing written', async () => {
    const expired = JSON.parse((await a.cli(['invite', '--expires', '1s', '--json'])).stdout).token
    const once = JSON.parse((await a.cli(['invite', '--json'])).stdout).token
    await new Promise((r) => setTimeout(r, 1200))
    const dirs = ['x1', 'x2', 'x3', 'x4'].map((d) => join(mesh.root, d))
    const start = (dir: string, token: string) =>
      runCli(['start', '--data-dir', dir, '--join', token, '--listen', '/ip4/127.0.0.1/tcp/0', '--no-mdns'])

    const e = await start(dirs[0], expired)
    expect(e.code).toBe(2)
    expect(e.stderr).toMatch(/expired/)

    // One machine uses the token; the next is refused.
    const c = await mesh.add('c', { cpus: 1, join: once })
    expect(c.peerId).toBeTruthy()
    const reused = await start(dirs[1], once)
    expect(reused.code).toBe(2)
    expect(reused.stderr).toMatch(/already used/)

    // A's token on a data dir that belongs to another mesh.
    const other = await mesh.add('other', { cpus: 1, mesh: 'elsewhere' })
    const tokenForLab = JSON.parse((await a.cli(['invite', '--json'])).stdout).token
    await other.stop()
    const foreign = await runCli(['start', '--data-dir', other.dataDir, '--join', tokenForLab, '--no-mdns'])
    expect(foreign.code).toBe(2)
    expect(foreign.stderr).toMatch(/already belongs to mesh "elsewhere"/)

    const bad = await start(dirs[2], 'gn1.not-a-token')
    expect(bad.code).toBe(2)
    expect(bad.stderr).toMatch(/not a valid join token/)

    for (const r of [e, reused, foreign, bad]) {
      expect(
        r.stderr
          .trim()
          .split('\n')
          .filter((l) => l.startsWith('gridnode:')),
      ).toHaveLength(1)
    }
    for (const d of [dirs[0], dirs[1], dirs[2]]) expect(existsSync(d) ? readdirSync(d) : []).toEqual([])
    await c.stop()
  }, 60_000)

  it('lets only the node holding the mesh key invite, and says so', async () => {
    const r = await b.cli(['invite'])
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/only the node that created mesh "lab"/)
  })

  it('renews certificates before they expire', async () => {
    const before = await b.api<MembersJson>('/v1/members')
    await eventually(
      'b to hold a renewed certificate',
      async () => (await b.api<MembersJson>('/v1/members')).self.expires !== before.self.expires,
      12_000,
    )
    // Well past the first certificate's 8 s, a and b still count each other as members.
    await new Promise((r) => setTimeout(r, 4000))
    const seen = await a.api<MembersJson>('/v1/members')
    expect(seen.members.find((m) => m.peer === b.peerId)?.connected).toBe(true)
  }, 30_000)

  it('revokes a member: disconnected within 10 s, its tasks finish elsewhere, and it cannot come back', async () => {
    const d = await mesh.add('d', { cpus: 2 })
    await eventually('a to list d', async () => {
      const peers = await a.api<Array<{ peerId: string }>>('/v1/peers')
      return peers.some((p) => p.peerId === d.peerId)
    })
    // A job from a whose tasks d will hold when it is revoked.
    const run = runCli(
      ['run', '--data-dir', a.dataDir, '--json', '--', 'sh', '-c', 'sleep 1; echo $0'],
      `${[...Array(12).keys()].join('\n')}\n`,
    )
    await eventually('d to be running tasks', async () => {
      const s = await d.api<{ capacity: { running: number } }>('/v1/status')
      return s.capacity.running > 0
    })
    const revokedAt = Date.now()
    const rv = await a.cli(['revoke', d.peerId, '--json'])
    expect(rv.code, rv.stderr).toBe(0)
    for (const node of [a, b]) {
      await eventually(
        `${node.name} to drop d`,
        async () => {
          const s = await node.api<{ connections: Array<{ peerId: string }> }>('/v1/status')
          return !s.connections.some((c) => c.peerId === d.peerId)
        },
        10_000,
        100,
      )
    }
    expect(Date.now() - revokedAt).toBeLessThan(10_000)
    // d itself is told (before, nothing on d said so: it kept redialing and being dropped).
    const revokedOnD = async () =>
      (await d.api<{ membership: { revokedAt?: string } }>('/v1/status')).membership.revokedAt
    await eventually('d to know it was revoked', async () => (await revokedOnD()) !== undefined, 10_000, 100)
    const result = await run
    expect(result.code, result.stderr).toBe(0)
    const lines = result.stdout
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(lines).toHaveLength(12)
    expect(new Set(lines.map((l) => l.index)).size).toBe(12)

    // Restarted with its old certificate, d is refused by everyone.
    await d.stop()
    await d.start()
    await new Promise((r) => setTimeout(r, 3000))
    const members = await a.api<MembersJson>('/v1/members')
    expect(members.members.map((m) => m.peer)).not.toContain(d.peerId)
    expect(members.revocations.map((r) => r.peer)).toContain(d.peerId)
    const bView = await b.api<{ connections: Array<{ peerId: string }> }>('/v1/status')
    expect(bView.connections.map((c) => c.peerId)).not.toContain(d.peerId)
    const dPeers = await d.api<unknown[]>('/v1/peers')
    expect(dPeers).toEqual([])
    expect(await revokedOnD()).toBeDefined() // and still knows after a restart
  }, 60_000)
})
