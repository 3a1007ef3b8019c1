/** --bootstrap needs the peer's ID (…/p2p/<peerId>): an address without one is refused at start. */
import { describe, expect, it } from 'vitest'
import { mergeConfig } from '../../src/node/config/load.ts'

const PEER = '12D3KooWAYQzDnbFoF9wWCzARHb4DK1tfn3PFG5VxtR4XVapn7FA'

describe('--bootstrap', () => {
  it('takes a multiaddr ending in /p2p/<peerId>', () => {
    const addr = `/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`
    expect(mergeConfig('/d', {}, { bootstrap: [addr] }).bootstrap).toEqual([addr])
    expect(
      mergeConfig('/d', {}, { bootstrap: [`/dns4/a.example/tcp/4001/p2p/${PEER}`] }).bootstrap,
    ).toHaveLength(1)
  })

  it.each([
    '/ip4/127.0.0.1/tcp/1',
    '/ip4/127.0.0.1/tcp/4001/p2p/',
    '/ip4/127.0.0.1/tcp/4001/p2p/not-a-peer-id',
  ])('refuses %s with one line naming the flag and what is missing', (addr) => {
    expect(() => mergeConfig('/d', {}, { bootstrap: [addr] })).toThrow(
      `--bootstrap ${JSON.stringify(addr)}: expected the peer's address ending in /p2p/<peerId>`,
    )
    try {
      mergeConfig('/d', {}, { bootstrap: [addr] })
    } catch (err) {
      expect((err as { code: string }).code).toBe('GN_BAD_CONFIG')
    }
  })
})
