/**
 * Noise's ciphers with the session key imported once. @chainsafe/libp2p-noise
 * seals frames of 1,200 bytes or more with node:crypto's ChaCha20-Poly1305,
 * passing the raw key on every frame; Node then tells a raw key from a
 * KeyObject by calling a native check that throws a TypeError (stack trace
 * and all) for anything not a KeyObject, once per frame each way. With four
 * busy daemons that was 3% of a thief's CPU (perf). Here each session's key
 * (the same Uint8Array for the session's life, noise's CipherState.k) becomes
 * a KeyObject once. The bytes on the wire are the same; smaller frames keep
 * noise's own WebAssembly cipher, as before.
 */
import { createCipheriv, createDecipheriv, createSecretKey, type KeyObject } from 'node:crypto'
import type { ICryptoInterface } from '@chainsafe/libp2p-noise'
import { defaultCrypto } from '@chainsafe/libp2p-noise/crypto'

/** A Uint8Array or noise's list of chunks (uint8arraylist, iterable). */
type Data = Parameters<ICryptoInterface['chaCha20Poly1305Encrypt']>[0]
type Sealed = ReturnType<ICryptoInterface['chaCha20Poly1305Encrypt']>

/** Noise's own threshold: below it, its WebAssembly ChaCha20-Poly1305 is faster than node:crypto's. */
const NODE_CIPHER_MIN_BYTES = 1200
const CHACHA = 'chacha20-poly1305'
const TAG = 16

const keys = new WeakMap<Uint8Array, KeyObject>()

function keyOf(k: Uint8Array): KeyObject {
  let key = keys.get(k)
  if (key === undefined) {
    key = createSecretKey(k)
    keys.set(k, key)
  }
  return key
}

function encrypt(plaintext: Data, nonce: Uint8Array, ad: Uint8Array, k: Uint8Array): Sealed {
  if (plaintext.byteLength < NODE_CIPHER_MIN_BYTES)
    return defaultCrypto.chaCha20Poly1305Encrypt(plaintext, nonce, ad, k)
  const cipher = createCipheriv(CHACHA, keyOf(k), nonce, { authTagLength: TAG })
  cipher.setAAD(ad, { plaintextLength: plaintext.byteLength })
  if (plaintext instanceof Uint8Array) {
    const updated = cipher.update(plaintext)
    const final = cipher.final()
    const tag = cipher.getAuthTag()
    return Buffer.concat([updated, final, tag], updated.byteLength + final.byteLength + tag.byteLength)
  }
  const parts: Uint8Array[] = []
  for (const buf of plaintext) parts.push(cipher.update(buf))
  parts.push(cipher.final(), cipher.getAuthTag())
  return Buffer.concat(parts)
}

function decrypt(
  ciphertext: Data,
  nonce: Uint8Array,
  ad: Uint8Array,
  k: Uint8Array,
  dst?: Uint8Array,
): Sealed {
  if (ciphertext.byteLength < NODE_CIPHER_MIN_BYTES)
    return defaultCrypto.chaCha20Poly1305Decrypt(ciphertext, nonce, ad, k, dst)
  const decipher = createDecipheriv(CHACHA, keyOf(k), nonce, { authTagLength: TAG })
  const text =
    ciphertext instanceof Uint8Array
      ? ciphertext.subarray(0, ciphertext.byteLength - TAG)
      : ciphertext.sublist(0, ciphertext.byteLength - TAG)
  decipher.setAAD(ad, { plaintextLength: text.byteLength })
  decipher.setAuthTag(ciphertext.subarray(ciphertext.byteLength - TAG))
  if (text instanceof Uint8Array) {
    const output = decipher.update(text)
    const final = decipher.final()
    return final.byteLength > 0
      ? Buffer.concat([output, final], output.byteLength + final.byteLength)
      : output
  }
  const parts: Uint8Array[] = []
  for (const buf of text) parts.push(decipher.update(buf))
  parts.push(decipher.final())
  return Buffer.concat(parts)
}

export const noiseCrypto: ICryptoInterface = {
  ...defaultCrypto,
  chaCha20Poly1305Encrypt: encrypt,
  chaCha20Poly1305Decrypt: decrypt,
}
