/**
 * A mesh's credentials in the data dir (all mode 0600):
 *
 *   swarm.key         the private network's pre-shared key, in the libp2p/Kubo format
 *   mesh.json         the mesh's name, public key, issuer and where to find members
 *   mesh.key          the mesh signing key: only on the node that created the mesh
 *   membership.cert   this node's certificate, signed by the mesh key
 *   revocations.json  revocations seen, each signed by the mesh key
 *   invites.json      on the issuer: open invitations (hashes of their secrets only)
 *   issued.json       on the issuer: certificates it has issued
 */
import { createHash, randomBytes } from 'node:crypto'
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { privateKeyFromProtobuf, publicKeyFromProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey, PublicKey } from '@libp2p/interface'
import { fromString, toString as uint8ToString } from 'uint8arrays'
import { MembershipError } from './certs.ts'

export const SWARM_KEY_FILE = 'swarm.key'
export const MESH_FILE = 'mesh.json'
export const MESH_KEY_FILE = 'mesh.key'
export const CERT_FILE = 'membership.cert'
export const REVOCATIONS_FILE = 'revocations.json'
export const INVITES_FILE = 'invites.json'
export const ISSUED_FILE = 'issued.json'

const SWARM_KEY_HEADER = '/key/swarm/psk/1.0.0/\n/base16/\n'

export interface MeshInfo {
  name: string
  /** The mesh public key, libp2p protobuf, base64. */
  meshKey: string
  /** Peer ID of the node holding the mesh signing key. */
  issuer: string
  /** Addresses members were last found at (bootstrap for later starts). */
  bootstrap: string[]
  createdAt: string
}

/** Everything a member needs, loaded from its data dir. */
export interface MeshCredentials {
  info: MeshInfo
  /** The swarm.key file's bytes, as @libp2p/pnet wants them. */
  swarmKey: Uint8Array
  meshPublicKey: PublicKey
  /** Present only on the issuer. */
  meshPrivateKey?: PrivateKey
  /** This node's certificate (signed bytes); undefined before the issuer signs its own. */
  cert?: Uint8Array
}

export function writeFileAtomic(path: string, data: string | Uint8Array, mode = 0o600): void {
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, data, { mode })
  chmodSync(tmp, mode)
  renameSync(tmp, path)
}

function readOptional(path: string): Buffer | undefined {
  try {
    return readFileSync(path)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw err
  }
}

export function swarmKeyFile(psk: Uint8Array): Uint8Array {
  if (psk.byteLength !== 32) throw new Error('a swarm key is 32 bytes')
  return new TextEncoder().encode(`${SWARM_KEY_HEADER}${Buffer.from(psk).toString('hex')}\n`)
}

/** The 32 key bytes of a swarm.key file; throws on any other format. */
export function parseSwarmKey(file: Uint8Array): Uint8Array {
  const text = new TextDecoder().decode(file)
  const m = /^\/key\/swarm\/psk\/1\.0\.0\/\r?\n\/base16\/\r?\n([0-9a-fA-F]{64})\s*$/.exec(text)
  if (!m) throw new MembershipError('GN_BAD_MESH_FILES', 'swarm.key is not a libp2p private-network key')
  return Uint8Array.from(Buffer.from(m[1], 'hex'))
}

/** True when the data dir holds mesh credentials. */
export function hasMesh(dir: string): boolean {
  return readOptional(join(dir, MESH_FILE)) !== undefined
}

export function loadMesh(dir: string): MeshCredentials | undefined {
  const infoBytes = readOptional(join(dir, MESH_FILE))
  if (infoBytes === undefined) return undefined
  const where = (f: string) => join(dir, f)
  try {
    const info = JSON.parse(infoBytes.toString('utf8')) as MeshInfo
    const swarm = readOptional(where(SWARM_KEY_FILE))
    if (swarm === undefined) throw new Error(`${SWARM_KEY_FILE} is missing`)
    parseSwarmKey(swarm)
    const meshPrivate = readOptional(where(MESH_KEY_FILE))
    const creds: MeshCredentials = {
      info: { ...info, bootstrap: Array.isArray(info.bootstrap) ? info.bootstrap : [] },
      swarmKey: new Uint8Array(swarm),
      meshPublicKey: publicKeyFromProtobuf(fromString(info.meshKey, 'base64')),
      meshPrivateKey: meshPrivate ? privateKeyFromProtobuf(meshPrivate) : undefined,
      cert: readOptional(where(CERT_FILE)),
    }
    if (creds.cert) creds.cert = new Uint8Array(creds.cert)
    return creds
  } catch (err) {
    if (err instanceof MembershipError) throw err
    throw new MembershipError(
      'GN_BAD_MESH_FILES',
      `cannot read the mesh credentials in ${dir}: ${(err as Error).message}`,
    )
  }
}

export function saveMeshInfo(dir: string, info: MeshInfo): void {
  writeFileAtomic(join(dir, MESH_FILE), `${JSON.stringify(info, null, 2)}\n`)
}

export function saveCert(dir: string, cert: Uint8Array): void {
  writeFileAtomic(join(dir, CERT_FILE), cert)
}

export function encodePublicKey(key: Uint8Array): string {
  return uint8ToString(key, 'base64')
}

// ---------------------------------------------------------------------------
// Revocations, invitations and issued certificates: small JSON lists.

export function loadList<T>(dir: string, file: string): T[] {
  const bytes = readOptional(join(dir, file))
  if (bytes === undefined) return []
  try {
    const v = JSON.parse(bytes.toString('utf8'))
    return Array.isArray(v) ? (v as T[]) : []
  } catch {
    throw new MembershipError('GN_BAD_MESH_FILES', `${join(dir, file)} is not valid JSON`)
  }
}

export function saveList<T>(dir: string, file: string, list: T[]): void {
  writeFileAtomic(join(dir, file), `${JSON.stringify(list, null, 1)}\n`)
}

export interface StoredInvite {
  /** sha256 of the secret, hex: the secret itself is never stored. */
  id: string
  created: number
  expires: number
  usesLeft: number
}

export function inviteId(secret: Uint8Array): string {
  return createHash('sha256').update(secret).digest('hex')
}

export function newSecret(): Uint8Array {
  return new Uint8Array(randomBytes(32))
}
