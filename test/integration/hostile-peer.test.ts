/**
 * The daemon never crashes on a member's bytes: garbage on the DHT protocol
 * and on every task protocol, malformed, oversized, foreign-mesh, wrongly
 * signed and stale adverts on the capacity topic. It keeps serving, lists no
 * peer for rejected adverts, and still accepts a well-formed advert afterwards
 * (so rejection is selective). The hostile peer is a real member process:
 * non-members cannot even open these streams (see private-mesh.test.ts).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import type { CapacityAdvert } from '../../src/protocol/advert/codec.ts'
import { encodeAdvert } from '../../src/protocol/advert/codec.ts'
import { Attacker } from './attacker.ts'
import { eventually, TestMesh, type TestNode } from './harness.ts'
import { advertOf } from './member-peer.ts'

const MESH = 'hostile'
const TOPIC = `gridnode/${MESH}/capacity/1`

function advert(peerId: string, over: Partial<CapacityAdvert> = {}): CapacityAdvert {
  const { sched, ...rest } = over
  return advertOf(MESH, peerId, rest, sched)
}

describe('a daemon facing a hostile member', () => {
  const mesh = new TestMesh('hostile')
  let target: TestNode
  let attacker: Attacker

  beforeAll(async () => {
    target = await mesh.add('target', { mesh: MESH, cpus: 2 })
    attacker = await Attacker.member(mesh)
    const d = await attacker.dial(target.addr)
    expect(d.member).toBe(true)
    await attacker.subscribe(TOPIC)
    await eventually('gossip to see the target subscribed', async () =>
      (await attacker.subscribers(TOPIC)).includes(target.peerId),
    )
  }, 60_000)
  afterAll(async () => {
    await attacker?.stop()
    await mesh.stopAll()
  })

  async function peers(): Promise<Array<{ peerId: string; cpus: number }>> {
    const r = await target.cli(['peers', '--json'])
    expect(r.code).toBe(0)
    return JSON.parse(r.stdout)
  }

  it('survives garbage on the DHT protocol', async () => {
    const garbage = new Uint8Array(4096).map((_, i) => (i * 7919) & 0xff)
    for (const bytes of [garbage, new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x0f]), new Uint8Array(0)]) {
      const r = await attacker.raw(target.peerId, `/gridnode/${MESH}/kad/1.0.0`, bytes)
      // A member is served the DHT (the stream opens); garbage only ends that stream.
      expect(r.refused).toBeUndefined()
    }
    expect((await target.cli(['status', '--json'])).code).toBe(0)
  })

  it('survives garbage, oversized frames and wrong-schema messages on every task protocol', async () => {
    const frame = (body: Uint8Array) => {
      const out = new Uint8Array(body.length + 5)
      let n = body.length
      let i = 0
      while (n >= 0x80) {
        out[i++] = (n & 0x7f) | 0x80
        n >>>= 7
      }
      out[i++] = n
      out.set(body, i)
      return out.slice(0, i + body.length)
    }
    const payloads = [
      new TextEncoder().encode('garbage without a length prefix, just bytes'),
      new Uint8Array([0xff, 0xff, 0xff, 0xff, 0x7f, 1, 2, 3]), // a 34 GB frame announced
      frame(new Uint8Array([0xa1, 0x61, 0x74, 0x65, 0x73, 0x74, 0x65, 0x61])), // CBOR, wrong schema
      frame(new Uint8Array([0xa2, 0x61, 0x76, 0x01, 0x61, 0x74, 0x65, 0x73, 0x74, 0x65, 0x61, 0x6c])), // v:1, unknown t
      frame(new Uint8Array(64).fill(0x9f)), // endless indefinite arrays
    ]
    for (const protocol of [
      '/gridnode/steal/1.0.0',
      '/gridnode/result/1.0.0',
      '/gridnode/lease/2.0.0',
      '/gridnode/blob/1.0.0',
    ]) {
      for (const bytes of payloads) {
        const r = await attacker.raw(target.peerId, protocol, bytes)
        expect(r.refused, `${protocol} must be served to a member`).toBeUndefined()
      }
    }
    const s = await target.api<{ peerId: string }>('/v1/status')
    expect(s.peerId).toBe(target.peerId)
    // The daemon still runs work after all of it.
    const { connect } = await import('../../src/client/index.ts')
    const grid = await connect({ dataDir: target.dataDir })
    const job = grid.map<number, number>(new URL('./fixtures/work.ts', import.meta.url), 'square', [3, 4])
    expect(await job.results()).toEqual([9, 16])
  })

  it('rejects malformed, oversized, foreign-mesh, wrongly signed and stale adverts', async () => {
    const me = attacker.peerId
    const bad: Uint8Array[] = [
      new TextEncoder().encode('not cbor at all'),
      new Uint8Array(20_000),
      encodeAdvert(advert(me, { mesh: 'elsewhere' })),
      encodeAdvert(advert(target.peerId)), // claims to be someone else
      encodeAdvert(advert(me, { sentAtMs: Date.now() - 3_600_000 })),
      encodeAdvert(advert(me)).slice(0, 40),
    ]
    for (const data of bad) await attacker.publish(TOPIC, data)
    await new Promise((r) => setTimeout(r, 1500))
    expect((await peers()).map((p) => p.peerId)).not.toContain(me)
    expect((await target.cli(['status', '--json'])).code).toBe(0)
  })

  it('still accepts a well-formed advert from the same member afterwards', async () => {
    const me = attacker.peerId
    const r = await attacker.publish(TOPIC, encodeAdvert(advert(me, { seq: 2, cpus: 7 })))
    expect(r.published, r.error).toBe(true)
    const listed = await eventually('the valid advert to be accepted', async () =>
      (await peers()).find((p) => p.peerId === me),
    )
    expect(listed.cpus).toBe(7)
  })
})
