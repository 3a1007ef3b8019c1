/**
 * Tasks that use an npm library (multiformats): its code is bundled with the
 * task, so the nodes that run it need not have it installed.
 */
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'

/** The content identifier (CIDv1, raw, sha2-256) of a text, as IPFS would name it. */
export async function cidOf(text: string): Promise<string> {
  const digest = await sha256.digest(new TextEncoder().encode(text))
  return CID.create(1, raw.code, digest).toString()
}

/** A CID for a pair of CIDs: one level of a Merkle tree. */
export async function combine(left: string, right: string): Promise<string> {
  return cidOf(`${left}\n${right}`)
}
