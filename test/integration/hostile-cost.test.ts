/**
 * A member whose requests are valid but ruinous to decode: 4 MiB leases of 16-link custody
 * chains naming ~60,000 distinct peer IDs (~50 ms of the owner's event loop per MiB), sent over
 * and over on every stream it may open. Per-kind rate limits count requests, not what they cost:
 * before, such leases kept the owner's main thread busy for as long as the member sent them. Now
 * each peer's requests are charged what decoding and handling them took (src/protocol/rate-limit.ts
 * CostBudget); past its budget the member's streams are not read, so it is slowed, not refused,
 * and the owner keeps the rest of its event loop.
 */
import { randomBytes } from 'node:crypto'
import { readFileSync } from 'node:fs'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { decode as cborDecode, encode as cborEncode } from 'cborg'
import { base58btc } from 'multiformats/bases/base58'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '../../src/client/index.ts'
import { LEASE_MAX_MESSAGE_BYTES, LEASE_PROTOCOL } from '../../src/protocol/index.ts'
import { TestMesh, type TestNode } from './harness.ts'
import { type Member, MiB, member } from './member-peer.ts'

const WORK = new URL('./fixtures/work.ts', import.meta.url)
/** The owner's budget in this test: a tenth of its event loop per peer, 200 ms at once. */
const BUDGET = { peerCostMsPerSecond: 100, peerCostBurstMs: 200 }
const ATTACK_MS = 6000
const STREAMS = 4

/** A syntactically valid Ed25519 peer ID (identity multihash of a 32-byte key), never seen before. */
const randomPeerId = () =>
  base58btc.encode(new Uint8Array([0, 36, 8, 1, 18, 32, ...randomBytes(32)])).slice(1)

/** One lease frame just under the protocol's limit, every entry a 16-link chain of new peer IDs. */
function heavyLease(): Uint8Array {
  const holdings = []
  const tag = randomBytes(16)
  let bytes = 0
  for (let i = 0; bytes < LEASE_MAX_MESSAGE_BYTES - 256 * 1024; i++) {
    const links = Array.from({ length: 16 }, () => ({ to: randomPeerId(), sig: randomBytes(64) }))
    holdings.push({
      job: `job-${i % 100}`,
      index: i,
      attempt: 0,
      copy: 17,
      custody: { first: randomPeerId(), tag, links },
    })
    bytes += 17 * 130
  }
  const frame = cborEncode({ v: 1, t: 'lease', holdings })
  expect(frame.byteLength).toBeLessThanOrEqual(LEASE_MAX_MESSAGE_BYTES)
  return frame
}

/** CPU time (ms) the process's main thread has had so far (Linux). */
function mainThreadMs(pid: number): number {
  return Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6
}

interface Inbound {
  byKind: Record<string, { received: number; limited: number; failed: number }>
  overBudget: { waits: number; waitedMs: number }
}

describe('a member sending requests that cost the owner dearly to decode', () => {
  const mesh = new TestMesh('hostile-cost')
  let owner: TestNode
  let m: Member

  beforeAll(async () => {
    owner = await mesh.add('owner', { cpus: 1, config: BUDGET })
    m = await member(mesh)
    expect(await m.join(owner.addr)).toBe(true)
  }, 60_000)

  afterAll(async () => {
    await m?.stop()
    await mesh.stopAll()
  })

  it('gets no more of the owner event loop than its budget, and its requests are still answered', async () => {
    const frame = heavyLease()
    const inbound = async () => (await owner.api<{ inbound: Inbound }>('/v1/status')).inbound
    const before = await inbound()
    const pid = owner.proc!.pid!
    const cpuBefore = mainThreadMs(pid)
    const started = performance.now()
    const replies: string[] = []
    const deadline = started + ATTACK_MS
    // The owner's main-thread time over the attack (the answers still owed come later).
    let busy = Number.NaN
    const measured = new Promise<void>((resolve) =>
      setTimeout(() => {
        busy = mainThreadMs(pid) - cpuBefore
        resolve()
      }, ATTACK_MS),
    )
    // Each stream sends a lease, waits for its answer, sends the next, until the attack ends.
    await Promise.all(
      Array.from({ length: STREAMS }, async () => {
        const stream: Stream = await m.open(owner.peerId, LEASE_PROTOCOL)
        const lp = lpStream(stream, { maxDataLength: 32 * MiB })
        try {
          while (performance.now() < deadline) {
            await lp.write(frame)
            const reply = cborDecode((await lp.read({ signal: AbortSignal.timeout(60_000) })).subarray(), {
              useMaps: false,
            }) as { t: string }
            replies.push(reply.t)
          }
        } finally {
          stream.abort(new Error('attack over'))
        }
      }),
    )
    await measured
    const after = await inbound()
    const decoded = after.byKind.lease.received - (before.byKind.lease?.received ?? 0)
    // Before: the owner's main thread spent 0.73 of the attack decoding leases (on 2 cores, where
    // the attacking process itself can send no faster). Now 0.21: 200 ms plus 100 ms a second of
    // decoding, the frames' transport and the answers.
    expect(busy / ATTACK_MS).toBeLessThan(0.3)
    expect(after.overBudget.waits).toBeGreaterThan(before.overBudget.waits)
    // Slowed, not refused: every lease it sent was decoded and answered.
    expect(replies.length).toBeGreaterThan(0)
    expect(replies.every((t) => t === 'lease-answer')).toBe(true)
    expect(decoded).toBe(replies.length)
  }, 120_000)

  it('still runs jobs afterwards', async () => {
    const grid = await connect({ dataDir: owner.dataDir })
    expect(await grid.map<number, number>(WORK, 'square', [1, 2, 3]).results()).toEqual([1, 4, 9])
  }, 60_000)
})
