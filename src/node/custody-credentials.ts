/**
 * Custody credentials, the crypto half (the scheduler carries them as plain
 * data, see src/scheduler/credentials.ts):
 *
 * - The owner's tag: AES-128 of the block (index, attempt), each a 64-bit
 *   big-endian integer, under a key for (job, first): HMAC-SHA256 of
 *   (job, first), truncated to 16 bytes, with a secret kept in
 *   `<data-dir>/custody.key` (32 random bytes, mode 0600). AES is a
 *   pseudorandom permutation, so without the key a tag cannot be made for a
 *   block not already tagged. Only the owner makes and checks tags, so the
 *   scheme is its own business; it survives an owner restart, and a batch of
 *   n tasks costs one HMAC and one AES call over n blocks (an HMAC per task
 *   was 7-9 us, about a tenth of an owner's CPU handing out no-ops).
 * - Each link: an Ed25519 (libp2p key) signature by the node handing the
 *   task on, over (owner, job, index, attempt, hop, to), checked with the
 *   public key inside the signer's peer ID.
 *
 * Messages are JSON arrays with a domain string first: canonical and
 * unambiguous whatever the job id contains.
 */
import {
  createCipheriv,
  createHmac,
  createPrivateKey,
  createPublicKey,
  createSecretKey,
  type KeyObject,
  randomBytes,
  sign as signWith,
  timingSafeEqual,
  verify as verifyWith,
} from 'node:crypto'
import { closeSync, fsyncSync, openSync, readFileSync, renameSync, rmSync, writeSync } from 'node:fs'
import { join } from 'node:path'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  type Batch,
  type CustodyCredentials,
  type CustodyPath,
  type HandOffSigner,
  handOff,
  type PathVerifier,
  type PeerKey,
  type TaskKey,
  verifiedPath,
} from '../scheduler/index.ts'

export const CUSTODY_KEY_FILE = 'custody.key'
export const CUSTODY_KEY_BYTES = 32
export const TAG_BYTES = 16

const TAG_DOMAIN = 'gridnode/custody-tag/2'
const TAG_KEYS = 4096
const LINK_DOMAIN = 'gridnode/custody-link/1'
const PUBLIC_KEY_CACHE = 4096
/**
 * Links verified already, remembered by everything their check covers. A task stolen on and on
 * comes back with one more link each time, and each longer copy repeats the links before it: an
 * owner checked a copy-k path's k-1 signatures at every hop (O(k^2) per task, 12% of an owner's
 * CPU with three thieves stealing no-ops from each other, perf). Now each link costs one check.
 */
const VERIFIED_LINKS = 16_384

const utf8 = new TextEncoder()

const b64url = (bytes: Uint8Array) =>
  Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString('base64url')

/**
 * Ed25519 keys as node:crypto KeyObjects, made once. @libp2p/crypto imports the raw key from JWK
 * on every sign and verify: a third of a signature's cost (a link is signed per task handed
 * on), a fifth of a verification's. The signatures are the same (Ed25519 is deterministic).
 */
function ed25519PrivateKey(key: PrivateKey): KeyObject | undefined {
  if (key.type !== 'Ed25519' || key.raw.byteLength !== 64) return undefined
  return createPrivateKey({
    format: 'jwk',
    key: { kty: 'OKP', crv: 'Ed25519', d: b64url(key.raw.subarray(0, 32)), x: b64url(key.raw.subarray(32)) },
  })
}

function ed25519PublicKey(key: PublicKey): KeyObject | undefined {
  if (key.type !== 'Ed25519' || key.raw.byteLength !== 32) return undefined
  return createPublicKey({ format: 'jwk', key: { kty: 'OKP', crv: 'Ed25519', x: b64url(key.raw) } })
}

/** A peer's key as verification needs it: the KeyObject for Ed25519, libp2p's key for other types. */
interface Verifying {
  key: PublicKey
  object: KeyObject | undefined
}

/** The 16-byte block a task's tag enciphers: its index and attempt, 64-bit big-endian each. */
function tagBlock(out: Buffer, at: number, key: TaskKey): void {
  out.writeUInt32BE(Math.floor(key.index / 0x100000000), at)
  out.writeUInt32BE(key.index >>> 0, at + 4)
  out.writeUInt32BE(Math.floor(key.attempt / 0x100000000), at + 8)
  out.writeUInt32BE(key.attempt >>> 0, at + 12)
}

export function linkMessage(owner: PeerKey, key: TaskKey, hop: number, to: PeerKey): Uint8Array {
  return utf8.encode(linkText(owner, key, hop, to))
}

function linkText(owner: PeerKey, key: TaskKey, hop: number, to: PeerKey): string {
  return JSON.stringify([LINK_DOMAIN, owner, key.job, key.index, key.attempt, hop, to])
}

/** The owner's custody secret: read from the data dir, or created there (0600) on first use. */
export function loadOrCreateCustodyKey(dataDir: string): Uint8Array {
  const path = join(dataDir, CUSTODY_KEY_FILE)
  try {
    const key = readFileSync(path)
    if (key.byteLength === CUSTODY_KEY_BYTES) return new Uint8Array(key)
    throw new Error(`${path} holds ${key.byteLength} bytes, not ${CUSTODY_KEY_BYTES}`)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err
  }
  const key = randomBytes(CUSTODY_KEY_BYTES)
  const tmp = `${path}.${process.pid}.tmp`
  const fd = openSync(tmp, 'w', 0o600)
  try {
    writeSync(fd, key)
    fsyncSync(fd)
  } finally {
    closeSync(fd)
  }
  try {
    renameSync(tmp, path)
  } catch (err) {
    rmSync(tmp, { force: true })
    throw err
  }
  return new Uint8Array(key)
}

export interface CustodyCredentialsOptions {
  /** This node's peer ID string. */
  self: PeerKey
  /** The owner's custody secret (see loadOrCreateCustodyKey). */
  secret: Uint8Array
  /** This node's libp2p key: signs the links of tasks it hands on. */
  privateKey: PrivateKey
}

/** Stamps batches as they leave this node and checks the credentials that arrive with leases and results. */
export class CustodyCredentialsService {
  readonly self: PeerKey
  private readonly secret: Uint8Array
  private readonly privateKey: PrivateKey
  private readonly privateKeyObject: KeyObject | undefined
  private readonly publicKeys = new Map<string, Verifying | null>()
  private readonly verifiedLinks = new Set<string>()
  /** Ed25519 verifications run (links only; remembered ones are not counted). */
  linkVerifications = 0
  private readonly signer: HandOffSigner
  private readonly verifier: PathVerifier
  private readonly hmacKey: KeyObject
  /** AES keys by job and first holder (see the module's comment). */
  private readonly tagKeys = new Map<string, KeyObject>()

  constructor(opts: CustodyCredentialsOptions) {
    if (opts.secret.byteLength !== CUSTODY_KEY_BYTES) throw new Error('custody secret must be 32 bytes')
    this.self = opts.self
    this.secret = opts.secret
    // Imported once: a raw key given to createHmac is re-imported on every call (a third of the cost).
    this.hmacKey = createSecretKey(opts.secret)
    this.privateKey = opts.privateKey
    this.privateKeyObject = ed25519PrivateKey(opts.privateKey)
    this.signer = {
      tag: (key, first) => this.tag(key, first),
      tags: (keys, first) => this.tags(keys, first),
      link: (owner, key, hop, to) => this.sign(linkMessage(owner, key, hop, to)),
    }
    this.verifier = {
      tag: (key, first, tag) => this.checkTag(key, first, tag),
      link: (owner, key, hop, from, to, sig) => this.checkLink(owner, key, hop, from, to, sig),
    }
  }

  /** The owner's tag for handing `key` to `first`. */
  tag(key: TaskKey, first: PeerKey): Uint8Array {
    return this.tags([key], first)[0]
  }

  /** The owner's tags for handing each of `keys` (of any jobs) to `first`, in order. */
  tags(keys: readonly TaskKey[], first: PeerKey): Uint8Array[] {
    const out = new Array<Uint8Array>(keys.length)
    // One cipher per job, over all of that job's blocks.
    const byJob = new Map<string, number[]>()
    for (let i = 0; i < keys.length; i++) {
      const at = byJob.get(keys[i].job)
      if (at === undefined) byJob.set(keys[i].job, [i])
      else at.push(i)
    }
    for (const [job, at] of byJob) {
      const blocks = Buffer.allocUnsafe(at.length * TAG_BYTES)
      for (let j = 0; j < at.length; j++) tagBlock(blocks, j * TAG_BYTES, keys[at[j]])
      const cipher = createCipheriv('aes-128-ecb', this.tagKey(job, first), null).setAutoPadding(false)
      const tags = cipher.update(blocks)
      cipher.final()
      // A copy each, never a view: a view of the batch's buffer would carry the whole buffer
      // wherever a descriptor is cloned or serialized (v8.serialize writes a view's ArrayBuffer),
      // which made 4 daemons of no-ops run at half speed.
      for (let j = 0; j < at.length; j++)
        out[at[j]] = new Uint8Array(tags.subarray(j * TAG_BYTES, (j + 1) * TAG_BYTES))
    }
    return out
  }

  private tagKey(job: string, first: PeerKey): KeyObject {
    const name = `${job}\n${first}`
    let key = this.tagKeys.get(name)
    if (key === undefined) {
      const mac = createHmac('sha256', this.hmacKey)
        .update(utf8.encode(JSON.stringify([TAG_DOMAIN, job, first])))
        .digest()
      key = createSecretKey(mac.subarray(0, 16))
      if (this.tagKeys.size >= TAG_KEYS) this.tagKeys.clear()
      this.tagKeys.set(name, key)
    }
    return key
  }

  checkTag(key: TaskKey, first: PeerKey, tag: Uint8Array): boolean {
    if (tag.byteLength !== TAG_BYTES) return false
    return timingSafeEqual(this.tag(key, first), tag)
  }

  private sign(message: Uint8Array): Uint8Array {
    if (this.privateKeyObject !== undefined)
      return new Uint8Array(signWith(null, message, this.privateKeyObject))
    const sig = this.privateKey.sign(message)
    // Node's Ed25519 (and every libp2p key type on Node) signs synchronously.
    if (!(sig instanceof Uint8Array)) throw new Error('custody links need a synchronous signing key')
    // A plain copy: Node hands back a Buffer, whose slice() is a view.
    return Buffer.isBuffer(sig) ? new Uint8Array(sig) : sig
  }

  private publicKey(peer: PeerKey): Verifying | undefined {
    let key = this.publicKeys.get(peer)
    if (key === undefined) {
      try {
        const pub = peerIdFromString(peer).publicKey
        key = pub === undefined ? null : { key: pub, object: ed25519PublicKey(pub) }
      } catch {
        key = null
      }
      if (this.publicKeys.size >= PUBLIC_KEY_CACHE) this.publicKeys.clear()
      this.publicKeys.set(peer, key)
    }
    return key ?? undefined
  }

  checkLink(owner: PeerKey, key: TaskKey, hop: number, from: PeerKey, to: PeerKey, sig: Uint8Array): boolean {
    const pub = this.publicKey(from)
    if (pub === undefined) return false
    const text = linkText(owner, key, hop, to)
    // The signer, the statement and the signature: the same three verify the same way.
    const memo = `${from}\n${b64url(sig)}\n${text}`
    if (this.verifiedLinks.has(memo)) return true
    const message = utf8.encode(text)
    let ok: boolean
    this.linkVerifications++
    try {
      if (pub.object !== undefined) ok = sig.byteLength === 64 && verifyWith(null, message, pub.object, sig)
      else ok = pub.key.verify(message, sig) === true
    } catch {
      ok = false
    }
    if (ok) {
      if (this.verifiedLinks.size >= VERIFIED_LINKS) this.verifiedLinks.clear()
      this.verifiedLinks.add(memo)
    }
    return ok
  }

  /** The batch as it leaves for `to`: grants for our own tasks, one more signed link for others'. */
  handOff(batch: Batch, to: PeerKey): Batch {
    return handOff(batch, this.self, to, this.signer)
  }

  /** Owner side: the verified path of credentials attached to a task of ours, or undefined. */
  path(key: TaskKey, custody: CustodyCredentials | undefined): CustodyPath | undefined {
    return verifiedPath(this.self, key, custody, this.verifier)
  }
}
