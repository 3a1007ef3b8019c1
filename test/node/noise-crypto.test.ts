import { randomBytes } from 'node:crypto'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'
import { noiseCrypto } from '../../src/node/noise-crypto.ts'

const flat = (x: Uint8Array | Uint8ArrayList): Uint8Array => (x instanceof Uint8Array ? x : x.subarray())

describe('noise ciphers with the session key imported once', () => {
  const k = new Uint8Array(randomBytes(32))
  const nonce = new Uint8Array(12)
  nonce[4] = 7
  const ad = new Uint8Array(randomBytes(32))

  it('seal and open exactly as noise’s own, below and above its 1,200-byte switch, flat or chunked', () => {
    for (const n of [0, 100, 1199, 1200, 5000, 65_519]) {
      const plain = new Uint8Array(randomBytes(n))
      const chunked = new Uint8ArrayList(plain.subarray(0, n >> 1), plain.subarray(n >> 1))
      const theirs = flat(defaultCrypto.chaCha20Poly1305Encrypt(plain, nonce, ad, k))
      for (const input of [plain, chunked]) {
        const ours = flat(noiseCrypto.chaCha20Poly1305Encrypt(input, nonce, ad, k))
        expect(Buffer.from(ours).equals(Buffer.from(theirs))).toBe(true)
      }
      const sealed = new Uint8ArrayList(theirs.subarray(0, 3), theirs.subarray(3))
      for (const input of [theirs, sealed]) {
        const opened = flat(noiseCrypto.chaCha20Poly1305Decrypt(input, nonce, ad, k))
        expect(Buffer.from(opened).equals(Buffer.from(plain))).toBe(true)
      }
    }
  })

  it('refuses a frame whose bytes or tag were changed', () => {
    const sealed = flat(noiseCrypto.chaCha20Poly1305Encrypt(new Uint8Array(4000), nonce, ad, k))
    for (const at of [0, 2000, sealed.byteLength - 1]) {
      const bad = sealed.slice()
      bad[at] ^= 1
      expect(() => noiseCrypto.chaCha20Poly1305Decrypt(bad, nonce, ad, k)).toThrow()
    }
    expect(() => noiseCrypto.chaCha20Poly1305Decrypt(sealed, nonce, ad, new Uint8Array(32))).toThrow()
  })
})
