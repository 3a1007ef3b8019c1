/**
 * Is this string a libp2p peer ID? Peers are named by strings in every
 * message (job owners, custody paths, certificates); a string that does not
 * parse must be refused when the message is decoded, never later (a job
 * owner of "x" used to crash the daemon from a timer). Parsing costs a few
 * microseconds, so recent answers are cached.
 */
import { peerIdFromString } from '@libp2p/peer-id'

const CACHE_MAX = 4096
const cache = new Map<string, boolean>()

export function isValidPeerId(s: string): boolean {
  const hit = cache.get(s)
  if (hit !== undefined) return hit
  let ok: boolean
  try {
    ok = s.length > 0 && s.length <= 128 && peerIdFromString(s).toString() === s
  } catch {
    ok = false
  }
  if (cache.size >= CACHE_MAX) cache.delete(cache.keys().next().value as string)
  cache.set(s, ok)
  return ok
}
