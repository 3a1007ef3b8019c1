/**
 * A member that lies about the files of its own jobs. The holder of a pushed task fetches the
 * job's input files from the member before the run (src/node/files/fetcher.ts); the member
 * serves part of each file, then says it has none of it.
 *
 * - A fetch cut midway keeps its part file to resume from; the same hash claimed again with
 *   another size (up to 2^50, the most a blob header announces) used to resume that part file
 *   without sizing it, and build an array of 2^28 piece numbers: V8 aborted the daemon. Now the
 *   size is bounded by the blob quota before anything is sized by it, and a part file resumes
 *   only under the size it was begun with.
 * - Part files of fetches that never finish were never counted anywhere: a member serving all
 *   but the last piece of ever new files filled the disk. Now they count against the quota, the
 *   oldest removed to make room for a new fetch.
 */
import { readdirSync, statSync } from 'node:fs'
import { join } from 'node:path'
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { decode as cborDecode, encode as cborEncode } from 'cborg'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BLOB_PROTOCOL } from '../../src/protocol/blob/codec.ts'
import { registerLeaseProtocol, registerResultProtocol, STEAL_PROTOCOL } from '../../src/protocol/index.ts'
import { eventually, TestMesh, type TestNode } from './harness.ts'
import { alive, type Member, MiB, member } from './member-peer.ts'

const FILE = 8 * MiB
const QUOTA = 20 * MiB

describe('a member lying about its files', () => {
  const mesh = new TestMesh('hostile-files')
  let victim: TestNode
  let m: Member
  /** The size the member's blob headers announce for each hash. */
  const sizes = new Map<string, number>()
  const failures = new Map<string, string>()

  beforeAll(async () => {
    victim = await mesh.add('victim', { cpus: 2 })
    m = await member(mesh)
    await registerResultProtocol(m.node, {
      async onResults(_p, req) {
        for (const r of req.results)
          failures.set(r.job, r.outcome.status === 'ok' ? 'ok' : (r.outcome as { error: string }).error)
        return { tasks: req.results.map(({ job, index, attempt }) => ({ job, index, attempt })) }
      },
    })
    await registerLeaseProtocol(m.node, {
      onLease: async () => ({ drop: [], cancelledJobs: [] }),
      onCancel: async () => ({}),
    })
    const filler = new Uint8Array(MiB).fill(7)
    await m.node.handle(
      BLOB_PROTOCOL,
      async (stream: Stream) => {
        const lp = lpStream(stream, { maxDataLength: 2 * MiB })
        try {
          const req = cborDecode((await lp.read()).subarray()) as {
            hash: string
            offset?: number
            length?: number
            pieces?: boolean
          }
          // No piece maps: the holder falls back to asking whether the file is here whole.
          if (req.pieces) return stream.abort(new Error('no piece maps here'))
          const size = sizes.get(req.hash) ?? 0
          const offset = req.offset ?? 0
          // "Here, whole", and the first 4 MiB piece; then nothing.
          const serve = req.length === 0 || offset < 4 * MiB
          await lp.write(cborEncode({ v: 1, t: 'blob-header', found: serve, size: serve ? size : 0 }))
          if (serve && req.length !== 0)
            await lp.write(cborEncode({ v: 1, t: 'blob-chunk', data: filler.subarray(0, req.length ?? MiB) }))
          await stream.close()
        } catch {
          stream.abort(new Error('closed'))
        }
      },
      { maxInboundStreams: 64 },
    )
    expect(await m.join(victim.addr)).toBe(true)
    expect((await victim.cli(['policy', 'set', 'blob-quota', `${QUOTA / MiB}MiB`])).code).toBe(0)
  }, 90_000)

  afterAll(async () => {
    await m?.stop()
    await mesh.stopAll()
  })

  let jobs = 0
  /** Pushes a one-task job of the member's own naming one input file; resolves once it has failed. */
  const pushAndFail = async (hash: string, size: number): Promise<string> => {
    sizes.set(hash, size)
    const id = `hostile-files-${++jobs}`
    const reply = await m.rpc(victim.peerId, STEAL_PROTOCOL, {
      t: 'push',
      batch: {
        jobs: [
          {
            id,
            owner: m.peerId,
            work: { kind: 'noop' },
            resources: { cpu: 1, gpu: 0, memoryMB: 0 },
            timeoutMs: 60_000,
            maxAttempts: 1,
            retries: 0,
            files: [{ path: 'in.bin', size, sha256: hash, mode: 0o644 }],
          },
        ],
        tasks: [{ job: id, index: 0, attempt: 0, input: new Uint8Array([0xf6]), depValues: [] }],
      },
    })
    expect((reply as { reply?: { t: string } }).reply?.t, JSON.stringify(reply)).toBe('push-ack')
    return eventually(`job ${id} to fail`, async () => failures.get(id), 60_000)
  }

  const partBytes = () => {
    const dir = join(victim.dataDir, 'blobs')
    return readdirSync(dir)
      .filter((n) => n.startsWith('.part-') && !n.endsWith('.done'))
      .reduce((sum, n) => sum + statSync(join(dir, n)).size, 0)
  }

  it('refuses a file claimed larger than the quota, even over a part file it resumes', async () => {
    const hash = 'ab'.repeat(32)
    expect(await pushAndFail(hash, FILE)).toMatch(/input files unavailable/)
    expect(partBytes()).toBe(FILE) // kept to resume from
    const why = await pushAndFail(hash, 2 ** 50)
    expect(why).toMatch(/over this node's blob cache quota/)
    expect(alive(victim.proc?.pid)).toBe(true)
    expect((await victim.api<{ peerId: string }>('/v1/status')).peerId).toBe(victim.peerId)
  }, 150_000)

  it('keeps the part files of fetches that never finish within the blob quota', async () => {
    for (let i = 0; i < 4; i++) {
      expect(await pushAndFail(`${i}c`.repeat(32), FILE)).toMatch(/input files unavailable/)
      expect(partBytes()).toBeLessThanOrEqual(QUOTA)
    }
    expect(alive(victim.proc?.pid)).toBe(true)
  }, 240_000)
})
