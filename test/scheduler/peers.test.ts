import { describe, expect, test } from 'vitest'
import { advertSignature, PeerView } from '../../src/scheduler/peers.ts'
import { advert, ready } from './helpers.ts'

describe('PeerView', () => {
  test('tracks peers with ready work and idle peers to push to', () => {
    const v = new PeerView()
    expect(v.update('a', advert({ ready: ready(3) }), 2, 0, 1000)).toEqual({
      changed: true,
      moreReady: true,
      acceptsChanged: true,
    })
    expect(v.update('b', advert(), undefined, 0, 1000)).toMatchObject({ changed: true, moreReady: false })
    expect([...v.withReady]).toEqual(['a'])
    expect([...v.pushable]).toEqual(['b'])
    expect(v.update('a', advert({ ready: ready(1) }), undefined, 0, 1000)).toEqual({
      changed: true,
      moreReady: false,
      acceptsChanged: false,
    })
    expect(v.peers.get('a')?.rttMs).toBe(2)
  })

  test('after a push, an unchanged advert makes a peer pushable again only an interval later; a lease does', () => {
    const v = new PeerView()
    v.update('b', advert(), 1, 0, 1000)
    v.pushed('b', 0)
    expect(v.update('b', advert(), 1, 500, 1000).changed).toBe(false)
    expect(v.pushable.has('b')).toBe(false)
    v.leaseFrom('b')
    expect(v.pushable.has('b')).toBe(true)
    v.pushed('b', 600)
    v.update('b', advert(), 1, 1600, 1000)
    expect(v.pushable.has('b')).toBe(true)
  })

  test('forget drops a peer everywhere', () => {
    const v = new PeerView()
    v.update('a', advert({ ready: ready(3) }), 2, 0, 1000)
    v.forget('a')
    expect(v.peers.size + v.withReady.size + v.pushable.size).toBe(0)
    expect(v.sizes()).toEqual([])
  })

  test('signatures ignore memory and mean but not slots, running or ready', () => {
    const base = advertSignature(advert())
    expect(advertSignature(advert({ freeMemoryMB: 1, meanTaskMs: 3 }))).toBe(base)
    expect(advertSignature(advert({ freeSlots: 1 }))).not.toBe(base)
    expect(advertSignature(advert({ running: 1 }))).not.toBe(base)
    expect(advertSignature(advert({ ready: ready(1) }))).not.toBe(base)
  })
})
