import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import {
  decodeToken,
  encodeToken,
  issueCertificate,
  issueRevocation,
  openCertificate,
  openRevocation,
} from '../../../src/node/membership/certs.ts'
import { parseSwarmKey, swarmKeyFile } from '../../../src/node/membership/files.ts'
import { Membership } from '../../../src/node/membership/membership.ts'
import { checkToken, createMesh } from '../../../src/node/membership/setup.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function mesh() {
  const dir = mkdtempSync(join(tmpdir(), 'gridnode-membership-'))
  dirs.push(dir)
  const founder = await generateKeyPair('Ed25519')
  const creds = await createMesh(dir, 'lab', founder)
  return { dir, creds, key: creds.meshPrivateKey! }
}

const peerOf = async () => (await generateKeyPair('Ed25519')).publicKey.toString()

describe('certificates and revocations', () => {
  it('verify under the mesh key, for the peer and mesh they name', async () => {
    const { creds, key } = await mesh()
    const peer = await peerOf()
    const c = await issueCertificate(key, { mesh: 'lab', peer, issued: 1, expires: 2 })
    const opened = await openCertificate(c.bytes, creds.meshPublicKey, 'lab', peer)
    expect(opened.value).toEqual({ mesh: 'lab', peer, issued: 1, expires: 2 })
    await expect(openCertificate(c.bytes, creds.meshPublicKey, 'lab', await peerOf())).rejects.toThrow(
      /names/,
    )
    await expect(openCertificate(c.bytes, creds.meshPublicKey, 'other')).rejects.toThrow(/mesh "lab"/)
    const stranger = (await mesh()).creds.meshPublicKey
    await expect(openCertificate(c.bytes, stranger, 'lab', peer)).rejects.toThrow(/not signed/)
    const tampered = Uint8Array.from(c.bytes)
    tampered[tampered.length - 1] ^= 1
    await expect(openCertificate(tampered, creds.meshPublicKey, 'lab', peer)).rejects.toThrow()
  })

  it('never lets a revocation pass for a certificate or the other way round', async () => {
    const { creds, key } = await mesh()
    const peer = await peerOf()
    const r = await issueRevocation(key, { mesh: 'lab', peer, at: 5 })
    expect((await openRevocation(r.bytes, creds.meshPublicKey, 'lab')).value.peer).toBe(peer)
    await expect(openCertificate(r.bytes, creds.meshPublicKey, 'lab')).rejects.toThrow()
    const c = await issueCertificate(key, { mesh: 'lab', peer, issued: 1, expires: 2 })
    await expect(openRevocation(c.bytes, creds.meshPublicKey, 'lab')).rejects.toThrow()
  })
})

describe('join tokens', () => {
  it('round-trip, and refuse malformed, cut or expired ones with one line', async () => {
    const { creds } = await mesh()
    const token = {
      mesh: 'lab',
      psk: parseSwarmKey(creds.swarmKey),
      meshKey: Buffer.from(creds.info.meshKey, 'base64'),
      issuer: creds.info.issuer,
      addrs: ['/ip4/127.0.0.1/tcp/4001'],
      secret: new Uint8Array(32).fill(7),
      expires: Date.now() + 60_000,
    }
    const text = encodeToken(token)
    expect(decodeToken(text).mesh).toBe('lab')
    expect(swarmKeyFile(decodeToken(text).psk)).toEqual(creds.swarmKey)
    expect(() => decodeToken('hello')).toThrow(/should start with "gn1."/)
    expect(() => decodeToken(text.slice(0, 40))).toThrow(/damaged or cut short/)
    expect(() => checkToken(encodeToken({ ...token, expires: Date.now() - 1 }))).toThrow(/expired/)
  })
})

describe('Membership.admitByCertificate (adverts from members not met yet)', () => {
  it('admits a valid certificate for the signer, refuses others, and revoked peers', async () => {
    const { dir, creds, key } = await mesh()
    const m = await Membership.open({ dataDir: dir, creds, log: pino({ level: 'silent' }) })
    const peer = await peerOf()
    const now = Date.now()
    const good = await issueCertificate(key, { mesh: 'lab', peer, issued: now, expires: now + 60_000 })
    const expired = await issueCertificate(key, { mesh: 'lab', peer, issued: now - 2, expires: now - 1 })
    expect(await m.admitByCertificate(await peerOf(), good.bytes)).toBe(false)
    expect(await m.admitByCertificate(peer, expired.bytes)).toBe(false)
    expect(m.isMember(peer)).toBe(false)
    expect(await m.admitByCertificate(peer, good.bytes)).toBe(true)
    expect(m.isMember(peer)).toBe(true)
    expect(m.refused['bad-certificate']).toBe(2)

    const revokedPeer = await peerOf()
    const r = await issueRevocation(key, { mesh: 'lab', peer: revokedPeer, at: now })
    // As if learnt by gossip: stored and then refused.
    ;(m as unknown as { applyRevocation(r: unknown): void }).applyRevocation(r)
    const c = await issueCertificate(key, {
      mesh: 'lab',
      peer: revokedPeer,
      issued: now,
      expires: now + 60_000,
    })
    expect(await m.admitByCertificate(revokedPeer, c.bytes)).toBe(false)
    // A restarted node still refuses it: revocations are kept in the data dir.
    const again = await Membership.open({ dataDir: dir, creds, log: pino({ level: 'silent' }) })
    expect(again.isRevoked(revokedPeer)).toBe(true)
  })
})
