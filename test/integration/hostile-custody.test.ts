/**
 * A member that steals tasks for real (so it holds the owner's genuine custody tags), then
 * makes the owner check signatures or fetch files on its word.
 *
 * - One lease naming a stolen task thousands of times, each time with a hand-off link to a new
 *   peer that the member signed itself: the owner verified every link, synchronously (15,000
 *   entries held its event loop for seconds). Now a task counts once per message.
 * - A lease naming thousands of stolen tasks, each with such a link: the owner checks at most
 *   MAX_PATH_CHECKS per message; the rest count as carrying no credentials.
 * - A result for a task the member never held, claiming an output file: the owner fetched the
 *   file from the member before the scheduler refused the result. Now only a sender that could
 *   report the task brings anything in.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { Stream } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Grid } from '../../src/client/index.ts'
import { linkMessage } from '../../src/node/custody-credentials.ts'
import { MAX_PATH_CHECKS } from '../../src/node/inbound.ts'
import { BLOB_PROTOCOL } from '../../src/protocol/blob/codec.ts'
import { LEASE_PROTOCOL, RESULT_PROTOCOL, STEAL_PROTOCOL } from '../../src/protocol/index.ts'
import { TestMesh, type TestNode } from './harness.ts'
import { alive, type Member, member } from './member-peer.ts'

const WORK = new URL('./fixtures/work.ts', import.meta.url)
const TASKS = MAX_PATH_CHECKS + 300

interface Stolen {
  job: string
  index: number
  attempt: number
  custody: { first: string; tag: Uint8Array; links: unknown[] }
}

describe('a member abusing custody credentials', () => {
  const mesh = new TestMesh('hostile-custody')
  let owner: TestNode
  let m: Member
  let grid: Grid
  let blobAsks = 0
  const stolen: Stolen[] = []

  const verifications = async (): Promise<number> => {
    const token = readFileSync(join(owner.dataDir, 'api.token'), 'utf8').trim()
    const res = await fetch(`${owner.ready!.api}/metrics`, { headers: { authorization: `Bearer ${token}` } })
    const text = await res.text()
    const line = text.split('\n').find((l) => l.startsWith('gridnode_custody_link_verifications_total '))
    if (line === undefined) throw new Error('no gridnode_custody_link_verifications_total in /metrics')
    return Number(line.split(' ')[1])
  }

  /** A hand-off link from the member to a new peer, as copy 2 of `t`. */
  const forged = async (t: Stolen) => {
    const to = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const key = { job: t.job, index: t.index, attempt: t.attempt }
    const sig = await m.privateKey.sign(linkMessage(owner.peerId, key, 2, to))
    return { ...key, copy: 2, custody: { first: m.peerId, tag: t.custody.tag, links: [{ to, sig }] } }
  }

  beforeAll(async () => {
    owner = await mesh.add('owner', { cpus: 1 })
    m = await member(mesh)
    await m.node.handle(
      BLOB_PROTOCOL,
      async (stream: Stream) => {
        blobAsks++
        stream.abort(new Error('not serving'))
      },
      { maxInboundStreams: 64 },
    )
    expect(await m.join(owner.addr)).toBe(true)
    grid = await connect({ dataDir: owner.dataDir })
    const job = grid.map<number, number>(
      WORK,
      'sleepThen',
      Array.from({ length: TASKS }, () => 60_000),
    )
    await job.id
    // Steal nearly all of them (claiming room for many): real grants, each with the owner's tag.
    for (let i = 0; i < 40 && stolen.length < TASKS - 10; i++) {
      const r = (await m.rpc(owner.peerId, STEAL_PROTOCOL, {
        t: 'steal',
        free: { cpu: 4096, gpu: 0, memoryMB: 0 },
        max: 1024,
      })) as { reply?: { batch?: { tasks: Stolen[] } } }
      stolen.push(...(r.reply?.batch?.tasks ?? []))
      if ((r.reply?.batch?.tasks.length ?? 0) === 0) await new Promise((res) => setTimeout(res, 100))
    }
    expect(stolen.length).toBeGreaterThan(MAX_PATH_CHECKS)
  }, 120_000)

  afterAll(async () => {
    await m?.stop()
    await mesh.stopAll()
  })

  it('checks a task named many times in one lease once', async () => {
    const holdings = []
    for (let i = 0; i < 2000; i++) holdings.push(await forged(stolen[0]))
    const before = await verifications()
    const r = (await m.rpc(owner.peerId, LEASE_PROTOCOL, { t: 'lease', holdings }, 60_000)) as {
      reply?: { t: string; drop: unknown[] }
    }
    expect(r.reply?.t).toBe('lease-answer')
    expect((await verifications()) - before).toBeLessThanOrEqual(1)
    // The first names a task the member does hold (it stole it): its repeats get the same answer.
    expect(r.reply?.drop).toHaveLength(0)
  }, 120_000)

  it('checks at most MAX_PATH_CHECKS links per lease', async () => {
    const holdings = []
    for (const t of stolen.slice(1)) holdings.push(await forged(t))
    expect(holdings.length).toBeGreaterThan(MAX_PATH_CHECKS)
    const before = await verifications()
    const r = (await m.rpc(owner.peerId, LEASE_PROTOCOL, { t: 'lease', holdings }, 60_000)) as {
      reply?: { t: string }
    }
    expect(r.reply?.t).toBe('lease-answer')
    const checked = (await verifications()) - before
    expect(checked).toBeGreaterThan(0)
    expect(checked).toBeLessThanOrEqual(MAX_PATH_CHECKS)
  }, 120_000)

  it('fetches no output of a task the sender never held', async () => {
    // The owner still runs one task of the job itself: it was never the member's.
    const mine = new Set(stolen.map((t) => t.index))
    const jobId = stolen[0].job
    const index = Array.from({ length: TASKS }, (_, i) => i).find((i) => !mine.has(i))
    expect(index).toBeDefined()
    const r = (await m.rpc(owner.peerId, RESULT_PROTOCOL, {
      t: 'results',
      results: [
        {
          job: jobId,
          index,
          attempt: 0,
          ranOn: m.peerId,
          outcome: {
            status: 'ok',
            value: new Uint8Array([0xf6]),
            durationMs: 1,
            outputs: [{ name: 'out.bin', size: 1024 * 1024, sha256: 'cd'.repeat(32) }],
          },
        },
      ],
    })) as { reply?: { t: string; tasks?: unknown[] } }
    expect(r.reply?.t).toBe('results-ack')
    expect(r.reply?.tasks).toEqual([])
    expect(blobAsks).toBe(0)
    expect(alive(owner.proc?.pid)).toBe(true)
  }, 60_000)
})
