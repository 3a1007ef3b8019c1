/**
 * The Ed25519 fast path of isValidPeerId against @libp2p/peer-id's own parser, on real peer IDs,
 * each mutated at every position, random strings of the same shape, and other key types (which
 * take the library's path).
 */
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey, peerIdFromString } from '@libp2p/peer-id'
import { describe, expect, it } from 'vitest'
import { isEd25519PeerId, isValidPeerId } from '../../src/protocol/peer-id.ts'

const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'

function library(s: string): boolean {
  try {
    return peerIdFromString(s).toString() === s
  } catch {
    return false
  }
}

/** A small deterministic PRNG (mulberry32), so a failure names its case. */
function rng(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

describe('peer ID strings', () => {
  it('agrees with the library on real Ed25519 IDs, every one-character change of them, and random look-alikes', async () => {
    const next = rng(7)
    const ids: string[] = []
    for (let i = 0; i < 200; i++) ids.push(peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString())
    const cases: string[] = [...ids]
    for (const id of ids.slice(0, 40)) {
      for (let p = 0; p < id.length; p++) {
        const c = BASE58[Math.floor(next() * 58)]
        cases.push(id.slice(0, p) + c + id.slice(p + 1))
      }
      cases.push(id.slice(0, -1), `${id}1`, `1${id.slice(1)}`, id.replace('W', '0'), `${id.slice(0, 51)}é`)
    }
    for (let i = 0; i < 5000; i++) {
      let s = '12D3KooW'
      while (s.length < 52) s += BASE58[Math.floor(next() * 58)]
      cases.push(s)
    }
    // The largest and smallest strings of the shape.
    cases.push(`12D3KooW${'z'.repeat(44)}`, `12D3KooW${'1'.repeat(44)}`)
    let valid = 0
    for (const s of cases) {
      const want = library(s)
      expect(isEd25519PeerId(s), s).toBe(want)
      expect(isValidPeerId(s), s).toBe(want)
      if (want) valid++
    }
    // Real ones are valid, and so are most random look-alikes (any 32 bytes are an Ed25519 key).
    expect(valid).toBeGreaterThan(200)
    expect(valid).toBeLessThan(cases.length)
  })

  it('takes the library path for other key types', async () => {
    for (const type of ['secp256k1', 'RSA'] as const) {
      const id = peerIdFromPrivateKey(await generateKeyPair(type, 1024)).toString()
      expect(isEd25519PeerId(id)).toBe(false)
      expect(isValidPeerId(id), type).toBe(true)
      expect(isValidPeerId(`${id}x`)).toBe(false)
    }
  })
})
