/**
 * What the mesh key signs: membership certificates (a peer ID is a member of
 * a mesh until a time) and revocations (a peer ID is no longer one). Both are
 * a CBOR body plus an Ed25519 signature by the mesh key over a domain-tagged
 * copy of the body, so a signature of one kind never passes for the other.
 * Join tokens (what `gridnode invite` prints) are encoded here too.
 */
import { publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { decode as cborDecode, encode as cborEncode } from 'cborg'
import { fromString, toString as uint8ToString } from 'uint8arrays'
import { GridnodeError } from '../../errors.ts'
import { isValidPeerId } from '../../protocol/peer-id.ts'
import { arr, bytes, type Check, literal, obj, str, uint } from '../../protocol/validate.ts'

const CERT_DOMAIN = new TextEncoder().encode('gridnode/member-cert/1\n')
const REVOCATION_DOMAIN = new TextEncoder().encode('gridnode/revocation/1\n')
const DECODE = {
  strict: true,
  allowUndefined: false,
  allowBigInt: false,
  rejectDuplicateMapKeys: true,
} as const

/** Largest encoded certificate or revocation we accept (they are ~200 bytes). */
export const MAX_SIGNED_BYTES = 2048

export interface Certificate {
  mesh: string
  peer: string
  issued: number
  expires: number
}

export interface Revocation {
  mesh: string
  peer: string
  at: number
}

/** A body and the mesh key's signature over it, as stored on disk and sent on the wire. */
export interface Signed<T> {
  value: T
  bytes: Uint8Array
}

export class MembershipError extends GridnodeError {}

const peerString: Check<string> = (v, path) => {
  const s = str({ min: 1, max: 128 })(v, path)
  if (!isValidPeerId(s)) throw new MembershipError('GN_BAD_CERT', `${path}: not a peer ID`)
  return s
}

const certBody = obj({
  v: literal(1),
  t: literal('member-cert'),
  mesh: str({ min: 1, max: 64 }),
  peer: peerString,
  issued: uint(),
  expires: uint(),
})
const revocationBody = obj({
  v: literal(1),
  t: literal('revocation'),
  mesh: str({ min: 1, max: 64 }),
  peer: peerString,
  at: uint(),
})
const envelope = obj({ body: bytes(1024), sig: bytes(256) })

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.byteLength + b.byteLength)
  out.set(a, 0)
  out.set(b, a.byteLength)
  return out
}

async function sign(key: PrivateKey, domain: Uint8Array, body: Record<string, unknown>): Promise<Uint8Array> {
  const bodyBytes = cborEncode(body)
  const sig = await key.sign(concat(domain, bodyBytes))
  return cborEncode({ body: bodyBytes, sig })
}

/** Decodes and checks a signed value; throws MembershipError with `code` on any problem. */
async function open<T>(
  signed: Uint8Array,
  meshKey: PublicKey,
  domain: Uint8Array,
  check: Check<T>,
  what: string,
): Promise<T> {
  if (!(signed instanceof Uint8Array) || signed.byteLength > MAX_SIGNED_BYTES) {
    throw new MembershipError('GN_BAD_CERT', `${what}: malformed or oversized`)
  }
  let env: { body: Uint8Array; sig: Uint8Array }
  let value: T
  try {
    env = envelope(cborDecode(signed, DECODE), what)
    value = check(cborDecode(env.body, DECODE), what)
  } catch (err) {
    if (err instanceof MembershipError) throw err
    throw new MembershipError('GN_BAD_CERT', `${what}: malformed (${(err as Error).message})`)
  }
  let ok = false
  try {
    ok = await meshKey.verify(concat(domain, env.body), env.sig)
  } catch {
    ok = false
  }
  if (!ok) throw new MembershipError('GN_BAD_CERT', `${what}: not signed by this mesh's key`)
  return value
}

export async function issueCertificate(meshKey: PrivateKey, cert: Certificate): Promise<Signed<Certificate>> {
  const bytes = await sign(meshKey, CERT_DOMAIN, { v: 1, t: 'member-cert', ...cert })
  return { value: cert, bytes }
}

/** Verifies a certificate for `mesh`; `peer` (when given) must be the one it names. Expiry is the caller's check. */
export async function openCertificate(
  signed: Uint8Array,
  meshKey: PublicKey,
  mesh: string,
  peer?: string,
): Promise<Signed<Certificate>> {
  const b = await open(signed, meshKey, CERT_DOMAIN, certBody, 'membership certificate')
  if (b.mesh !== mesh) {
    throw new MembershipError('GN_BAD_CERT', `membership certificate is for mesh "${b.mesh}", not "${mesh}"`)
  }
  if (peer !== undefined && b.peer !== peer) {
    throw new MembershipError('GN_BAD_CERT', `membership certificate names ${b.peer}, not the sender ${peer}`)
  }
  return { value: { mesh: b.mesh, peer: b.peer, issued: b.issued, expires: b.expires }, bytes: signed }
}

export async function issueRevocation(meshKey: PrivateKey, r: Revocation): Promise<Signed<Revocation>> {
  const bytes = await sign(meshKey, REVOCATION_DOMAIN, { v: 1, t: 'revocation', ...r })
  return { value: r, bytes }
}

export async function openRevocation(
  signed: Uint8Array,
  meshKey: PublicKey,
  mesh: string,
): Promise<Signed<Revocation>> {
  const b = await open(signed, meshKey, REVOCATION_DOMAIN, revocationBody, 'revocation')
  if (b.mesh !== mesh) throw new MembershipError('GN_BAD_CERT', `revocation is for mesh "${b.mesh}"`)
  return { value: { mesh: b.mesh, peer: b.peer, at: b.at }, bytes: signed }
}

// ---------------------------------------------------------------------------
// Join tokens: "gn1." + base64url(CBOR), one copy-pasteable string.

export const TOKEN_PREFIX = 'gn1.'

export interface JoinToken {
  mesh: string
  /** The 32-byte pre-shared key of the mesh's private network. */
  psk: Uint8Array
  /** The mesh's public key (libp2p protobuf): what every certificate is checked against. */
  meshKey: Uint8Array
  /** The inviting node: it redeems the invitation and renews certificates. */
  issuer: string
  /** Where to reach the issuer (multiaddrs ending in /p2p/<issuer>). */
  addrs: string[]
  /** The one-time invitation secret. */
  secret: Uint8Array
  /** ms since the epoch. */
  expires: number
}

const tokenBody = obj({
  v: literal(1),
  mesh: str({ min: 1, max: 64 }),
  psk: bytes(32),
  meshKey: bytes(128),
  issuer: peerString,
  addrs: arr(str({ min: 1, max: 512 }), 32),
  secret: bytes(32),
  expires: uint(),
})

export function encodeToken(t: JoinToken): string {
  return TOKEN_PREFIX + uint8ToString(cborEncode({ v: 1, ...t }), 'base64url')
}

/** Parses a join token; every problem is one line naming what is wrong (GN_BAD_TOKEN, a usage error). */
export function decodeToken(text: string): JoinToken {
  const bad = (why: string) => new MembershipError('GN_BAD_TOKEN', `--join: not a valid join token (${why})`)
  const s = text.trim()
  if (!s.startsWith(TOKEN_PREFIX)) throw bad(`it should start with "${TOKEN_PREFIX}"`)
  if (s.length > 8192) throw bad('too long')
  let t: ReturnType<typeof tokenBody>
  try {
    t = tokenBody(cborDecode(fromString(s.slice(TOKEN_PREFIX.length), 'base64url'), DECODE), 'token')
  } catch (err) {
    throw bad(`damaged or cut short: ${(err as Error).message}`)
  }
  if (t.psk.byteLength !== 32 || t.secret.byteLength !== 32) throw bad('wrong key length')
  try {
    publicKeyFromProtobuf(t.meshKey)
  } catch {
    throw bad('bad mesh key')
  }
  if (t.addrs.length === 0) throw bad('no address to reach the inviting node')
  return {
    mesh: t.mesh,
    psk: t.psk,
    meshKey: t.meshKey,
    issuer: t.issuer,
    addrs: t.addrs,
    secret: t.secret,
    expires: t.expires,
  }
}
