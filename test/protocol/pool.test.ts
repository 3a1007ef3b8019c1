import { describe, expect, it } from 'vitest'
import { PeerClients } from '../../src/protocol/pool.ts'

describe('PeerClients', () => {
  it('makes one client per peer and closes it when dropped', () => {
    const closed: string[] = []
    const pool = new PeerClients((peer) => ({ peer, close: () => closed.push(peer) }))
    expect(pool.get('a')).toBe(pool.get('a'))
    pool.get('b')
    expect(pool.size).toBe(2)
    pool.drop('a')
    pool.drop('zz')
    expect(closed).toEqual(['a'])
    expect(pool.get('a')).not.toBeUndefined()
    pool.closeAll()
    expect(closed.sort()).toEqual(['a', 'a', 'b'])
    expect(pool.size).toBe(0)
  })
})
