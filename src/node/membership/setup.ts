/**
 * Becoming a member: the first start on a data dir with no mesh creates a new
 * private mesh (this node holds its key); `gridnode start --join <token>`
 * redeems an invitation at the inviting node and stores what it got. A join
 * that fails writes nothing to the data dir.
 */

import { randomBytes } from 'node:crypto'
import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import {
  generateKeyPair,
  privateKeyToProtobuf,
  publicKeyFromProtobuf,
  publicKeyToProtobuf,
} from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'
import { GridnodeError } from '../../errors.ts'
import { RemoteRequestError } from '../../protocol/errors.ts'
import { MEMBER_PROTOCOL } from '../../protocol/membership/codec.ts'
import { rpcClient } from '../../protocol/rpc.ts'
import { IDENTITY_FILE } from '../data-dir.ts'
import { decodeToken, type JoinToken, MembershipError, openCertificate } from './certs.ts'
import {
  encodePublicKey,
  loadMesh,
  MESH_KEY_FILE,
  type MeshCredentials,
  type MeshInfo,
  SWARM_KEY_FILE,
  saveCert,
  saveMeshInfo,
  swarmKeyFile,
  writeFileAtomic,
} from './files.ts'
import { memberSpec } from './membership.ts'

/** Creates a new private mesh in `dir`, held by the node whose key is `identity`. */
export async function createMesh(dir: string, name: string, identity: PrivateKey): Promise<MeshCredentials> {
  const meshKey = await generateKeyPair('Ed25519')
  writeFileAtomic(join(dir, MESH_KEY_FILE), privateKeyToProtobuf(meshKey))
  writeFileAtomic(join(dir, SWARM_KEY_FILE), swarmKeyFile(new Uint8Array(randomBytes(32))))
  const info: MeshInfo = {
    name,
    meshKey: encodePublicKey(publicKeyToProtobuf(meshKey.publicKey)),
    issuer: identity.publicKey.toString(),
    bootstrap: [],
    createdAt: new Date().toISOString(),
  }
  saveMeshInfo(dir, info)
  const creds = loadMesh(dir)
  if (creds === undefined) throw new Error('mesh credentials vanished while being written')
  return creds
}

/** Checks a token before anything touches the disk: malformed or expired is a usage error (exit 2). */
export function checkToken(text: string, now = Date.now()): JoinToken {
  const token = decodeToken(text)
  if (token.expires <= now) {
    throw new MembershipError(
      'GN_BAD_TOKEN',
      `--join: this invitation expired at ${new Date(token.expires).toISOString()}; ask for a new one (gridnode invite)`,
    )
  }
  return token
}

/** A data dir that already belongs to a mesh can only "join" that same mesh again (a no-op). */
export function checkJoinTarget(dir: string, token: JoinToken): 'join' | 'already-member' {
  const creds = loadMesh(dir)
  if (creds === undefined) return 'join'
  if (creds.info.name === token.mesh && creds.info.meshKey === encodePublicKey(token.meshKey)) {
    return 'already-member'
  }
  throw new MembershipError(
    'GN_BAD_TOKEN',
    `--join: this data dir (${dir}) already belongs to mesh "${creds.info.name}"; the token is for mesh "${token.mesh}". Use another --data-dir`,
  )
}

/**
 * Redeems the invitation at the inviting node with a throwaway libp2p node
 * that speaks only the member protocol, then stores the identity (if new),
 * swarm key, mesh info and certificate. On failure nothing is written.
 */
export async function redeemInvitation(
  dir: string,
  token: JoinToken,
  identity: { key: PrivateKey; isNew: boolean },
  timeoutMs = 15_000,
): Promise<void> {
  const node = await createLibp2p({
    privateKey: identity.key,
    addresses: { listen: [] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk: swarmKeyFile(token.psk) }),
    connectionManager: { dialTimeout: Math.min(timeoutMs, 10_000) },
  })
  const meshKey = publicKeyFromProtobuf(token.meshKey)
  const self = node.peerId.toString()
  let lastError: Error | undefined
  try {
    for (const addr of token.addrs) {
      const client = rpcClient(memberSpec, (signal) =>
        node.dialProtocol(multiaddr(addr), MEMBER_PROTOCOL, { signal }),
      )
      try {
        const rep = await client.request({ t: 'redeem', secret: token.secret }, { timeoutMs })
        if (rep.t !== 'redeemed') continue
        const cert = await openCertificate(rep.cert, meshKey, token.mesh, self)
        if (identity.isNew) writeFileAtomic(join(dir, IDENTITY_FILE), privateKeyToProtobuf(identity.key))
        writeFileAtomic(join(dir, SWARM_KEY_FILE), swarmKeyFile(token.psk))
        saveCert(dir, cert.bytes)
        saveMeshInfo(dir, {
          name: token.mesh,
          meshKey: encodePublicKey(token.meshKey),
          issuer: token.issuer,
          bootstrap: token.addrs,
          createdAt: new Date().toISOString(),
        })
        return
      } catch (err) {
        if (err instanceof RemoteRequestError) throw refusal(err)
        lastError = err as Error
      } finally {
        client.close()
      }
    }
  } finally {
    await Promise.resolve(node.stop()).catch(() => {})
  }
  throw new GridnodeError(
    'GN_JOIN_FAILED',
    `--join: cannot reach the inviting node of mesh "${token.mesh}" at ${token.addrs.join(', ')} (${lastError?.message ?? 'no answer'})`,
  )
}

/** The inviter said no: one line, a usage error (exit 2). */
function refusal(err: RemoteRequestError): MembershipError {
  const code = err.remoteCode
  const why: Record<string, string> = {
    GN_INVITE_UNKNOWN: 'this invitation was already used (or was not issued by that node); ask for a new one',
    GN_INVITE_EXPIRED: 'this invitation has expired; ask for a new one',
    GN_REVOKED: 'this node was revoked from the mesh',
    GN_NOT_ISSUER: 'the node in the token cannot admit members',
  }
  return new MembershipError('GN_BAD_TOKEN', `--join: refused: ${why[code] ?? err.message}`)
}

/** Removes a data dir this join created, if nothing else is in it. */
export function removeIfEmpty(dir: string, existedBefore: boolean): void {
  if (existedBefore || !existsSync(dir)) return
  if (readdirSync(dir).length === 0) rmSync(dir, { recursive: true, force: true })
}
