/**
 * A member revoked while its long-lived request streams are open gets nothing more on them.
 * Members keep a revoked peer's connection 2 s (so the revocation's gossip reaches it, and it can
 * tell its user); streams are gated only when they open, so before every request was checked, a
 * revoked thief's open steal stream went on being served for those 2 s (found by a review).
 */
import type { Stream } from '@libp2p/interface'
import { lpStream } from '@libp2p/utils'
import { decode as cborDecode, encode as cborEncode } from 'cborg'
import { afterAll, describe, expect, it } from 'vitest'
import { LEASE_PROTOCOL, STEAL_PROTOCOL } from '../../src/protocol/index.ts'
import { TestMesh } from './harness.ts'
import { MiB, member } from './member-peer.ts'

describe('a member revoked with its streams open', () => {
  const mesh = new TestMesh('revoked-streams')
  afterAll(() => mesh.stopAll())

  it('is refused on them at once, with GN_NOT_A_MEMBER', async () => {
    const owner = await mesh.add('owner', { cpus: 1 })
    const m = await member(mesh)
    try {
      expect(await m.join(owner.addr)).toBe(true)
      const ask = async (stream: Stream, msg: Record<string, unknown>) => {
        const lp = lpStream(stream, { maxDataLength: MiB })
        await lp.write(cborEncode({ v: 1, ...msg }))
        return cborDecode((await lp.read({ signal: AbortSignal.timeout(5000) })).subarray(), {
          useMaps: false,
        }) as {
          t: string
          code?: string
        }
      }
      const lease = await m.open(owner.peerId, LEASE_PROTOCOL)
      const steal = await m.open(owner.peerId, STEAL_PROTOCOL)
      const stealReq = { t: 'steal', free: { cpu: 4, gpu: 0, memoryMB: 0 }, max: 8 }
      expect((await ask(lease, { t: 'lease', holdings: [] })).t).toBe('lease-answer')
      expect((await ask(steal, stealReq)).t).toBe('steal-reply')

      const r = await owner.cli(['revoke', m.peerId, '--json'])
      expect(r.code, r.stderr).toBe(0)
      // Within the 2 s the connection stays: the same streams, refused.
      expect(await ask(lease, { t: 'lease', holdings: [] })).toMatchObject({
        t: 'error',
        code: 'GN_NOT_A_MEMBER',
      })
      expect(await ask(steal, stealReq)).toMatchObject({ t: 'error', code: 'GN_NOT_A_MEMBER' })
    } finally {
      await m.stop()
    }
  }, 60_000)
})
