/**
 * Is this string a libp2p peer ID? Peers are named by strings in every
 * message (job owners, custody paths, certificates); a string that does not
 * parse must be refused when the message is decoded, never later (a job
 * owner of "x" used to crash the daemon from a timer).
 *
 * Ed25519 peer IDs (every gridnode node's) are checked here directly: 52
 * base58btc characters that decode to an identity multihash of the
 * protobuf of a 32-byte Ed25519 key, the only bytes whose canonical string
 * that is. About 3 us instead of ~10 us through @libp2p/peer-id, which
 * mattered for a message naming thousands of peers (a 4 MiB lease of 15,000
 * distinct peer IDs took ~0.3 s to check). Other key types take the library's
 * parser. Recent answers are cached either way.
 */
import { peerIdFromString } from '@libp2p/peer-id'

const CACHE_MAX = 4096
const cache = new Map<string, boolean>()

export function isValidPeerId(s: string): boolean {
  const hit = cache.get(s)
  if (hit !== undefined) return hit
  const ok = s.startsWith(ED25519_PREFIX) ? isEd25519PeerId(s) : parses(s)
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string)
  cache.set(s, ok)
  return ok
}

function parses(s: string): boolean {
  try {
    return s.length > 0 && s.length <= 128 && peerIdFromString(s).toString() === s
  } catch {
    return false
  }
}

/** How every Ed25519 peer ID's string starts: base58btc of 00 24 08 01 12 20 … */
const ED25519_PREFIX = '12D3KooW'
const ED25519_ID_CHARS = 52
/** identity multihash (code 0, 36 bytes) of protobuf { type: Ed25519 (1), data: 32 bytes } */
const ED25519_ID_HEAD = [0x00, 0x24, 0x08, 0x01, 0x12, 0x20]
const ED25519_ID_BYTES = ED25519_ID_HEAD.length + 32
const BASE58 = '123456789ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz'
const DIGIT = new Int8Array(128).fill(-1)
for (let i = 0; i < BASE58.length; i++) DIGIT[BASE58.charCodeAt(i)] = i
const bytes = new Uint8Array(ED25519_ID_BYTES)

/** Whether `s` is the canonical string of an Ed25519 peer ID (see the module's comment). */
export function isEd25519PeerId(s: string): boolean {
  if (s.length !== ED25519_ID_CHARS) return false
  bytes.fill(0)
  // Big-endian base58 into a fixed 38 bytes; a carry out of the top byte is a value too large.
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i)
    let carry = c < 128 ? DIGIT[c] : -1
    if (carry < 0) return false
    for (let j = ED25519_ID_BYTES - 1; j >= 0; j--) {
      carry += 58 * bytes[j]
      bytes[j] = carry & 0xff
      carry >>= 8
    }
    if (carry !== 0) return false
  }
  // One leading '1' is one leading zero byte, and the head makes the rest of the bytes the key.
  for (let i = 0; i < ED25519_ID_HEAD.length; i++) if (bytes[i] !== ED25519_ID_HEAD[i]) return false
  return true
}
