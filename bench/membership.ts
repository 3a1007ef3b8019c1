/**
 * Membership figures, with real daemon processes on loopback:
 * start to first peer seen, time for a 10-node mesh to reach full membership
 * from a single bootstrap peer, advert propagation p50/p99, idle RSS.
 */
import { eventually, TestMesh, type TestNode } from '../test/integration/harness.ts'
import { benchBin } from './build.ts'

interface StatusJson {
  rssMB: number
  advertDelayMs: { n: number; p50: number; p99: number }
}

async function peerCount(node: TestNode): Promise<number> {
  return (await node.api<unknown[]>('/v1/peers')).length
}

async function status(node: TestNode): Promise<StatusJson> {
  return node.api<StatusJson>('/v1/status')
}

export async function membershipBench(nodes = 10): Promise<Record<string, number>> {
  const bin = await benchBin()
  const mesh = new TestMesh('bench-membership')
  try {
    const a = await mesh.add('n0', { cpus: 1, bin })
    // 1. One daemon joining: from spawn to its first peer, and from its ready line to that.
    const spawnedAt = performance.now()
    const b = await mesh.add('n1', { cpus: 1, bootstrap: [a.addr], bin })
    const readyAt = performance.now()
    await eventually('n1 to see n0', async () => (await peerCount(b)) >= 1, 30_000, 25)
    const firstPeerAt = performance.now()

    // 2. The rest join concurrently through n0 only.
    const t0 = performance.now()
    const rest = await Promise.all(
      Array.from({ length: nodes - 2 }, (_, i) =>
        mesh.add(`n${i + 2}`, { cpus: 1, bootstrap: [a.addr], bin }),
      ),
    )
    const allReadyAt = performance.now()
    const all = [a, b, ...rest]
    await Promise.all(
      all.map((n) =>
        eventually(`${n.name} full membership`, async () => (await peerCount(n)) === nodes - 1, 60_000, 100),
      ),
    )
    const fullAt = performance.now()

    // 3. Adverts flow as heartbeats; let some accumulate, then read each node's delay figures.
    await new Promise((r) => setTimeout(r, 5000))
    const statuses = await Promise.all(all.map(status))
    const p50s = statuses.map((s) => s.advertDelayMs.p50).sort((x, y) => x - y)
    return {
      nodes,
      spawnToFirstPeerMs: Math.round(firstPeerAt - spawnedAt),
      readyToFirstPeerMs: Math.round(firstPeerAt - readyAt),
      meshSpawnToFullMembershipMs: Math.round(fullAt - t0),
      meshReadyToFullMembershipMs: Math.round(fullAt - allReadyAt),
      advertDelayP50Ms: p50s[Math.floor(p50s.length / 2)],
      advertDelayP99Ms: Math.max(...statuses.map((s) => s.advertDelayMs.p99)),
      advertSamples: statuses.reduce((n, s) => n + s.advertDelayMs.n, 0),
      idleRssMB: statuses[0].rssMB,
    }
  } finally {
    await mesh.stopAll()
  }
}
