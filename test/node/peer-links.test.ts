import { describe, expect, test } from 'vitest'
import type { GridLibp2p } from '../../src/node/create-node.ts'
import { PeerLinks } from '../../src/node/peer-links.ts'

describe('PeerLinks', () => {
  test('a key that is no peer ID never throws: each request rejects instead', async () => {
    let dials = 0
    const node = {
      dialProtocol: () => {
        dials++
        return Promise.reject(new Error('unreachable'))
      },
    } as unknown as GridLibp2p
    const links = new PeerLinks(node, { onLateBatch: () => {} })
    const link = links.get('x')
    await expect(link.lease.lease({ holdings: [] })).rejects.toThrow()
    await expect(link.steal.push({ batch: { jobs: [], tasks: [] } })).rejects.toThrow()
    await expect(links.fetchBlob('x', 'a'.repeat(64))).rejects.toThrow()
    expect(dials).toBe(0)
    links.close()
  })
})
