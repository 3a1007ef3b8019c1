/**
 * A mesh on the default random ports, without mDNS, comes back together after its nodes restart
 * (found by a new-user trial: each came back on a new port, and the only addresses a node knew
 * were the ones baked into its invitation, so every node stayed alone for good). Each node now
 * remembers where members were last reachable (src/node/address-book.ts) and dials them at start.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ADDRESS_BOOK_FILE } from '../../src/node/address-book.ts'
import { eventually, TestMesh } from './harness.ts'

describe('restarting the nodes of a mesh', () => {
  const mesh = new TestMesh('address-book')
  afterAll(() => mesh.stopAll())

  it('finds the other members again, each node on a new port', async () => {
    const a = await mesh.add('a', { cpus: 1 })
    const b = await mesh.add('b', { cpus: 1 })
    const peersOf = async (n: typeof a) =>
      (await n.api<Array<{ peerId: string }>>('/v1/peers')).map((p) => p.peerId)
    await eventually('b sees a', async () => (await peersOf(b)).includes(a.peerId), 20_000)

    const oldA = a.addr
    await a.stop()
    await a.start()
    expect(a.addr).not.toBe(oldA)
    // a founded the mesh: it has no bootstrap address at all, only what it remembered of b.
    const book = JSON.parse(readFileSync(join(a.dataDir, ADDRESS_BOOK_FILE), 'utf8'))
    expect(Object.keys(book.peers)).toEqual([b.peerId])
    await eventually('a finds b again', async () => (await peersOf(a)).includes(b.peerId), 30_000)

    // b's invitation names a's old address; b learned a's new one from a itself.
    const oldB = b.addr
    await b.stop()
    await b.start()
    expect(b.addr).not.toBe(oldB)
    await eventually('b finds a again', async () => (await peersOf(b)).includes(a.peerId), 30_000)
    await eventually('a sees b again', async () => (await peersOf(a)).includes(b.peerId), 30_000)
  }, 150_000)
})
