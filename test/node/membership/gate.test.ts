/**
 * The membership gate on real libp2p nodes over loopback: a gated stream
 * opens between members, and a stream opened while our own hello to the
 * peer has just failed waits for the peer to prove itself instead of being
 * refused (a refused gossip stream is never opened again on that
 * connection: a node that had just joined once stayed deaf to the mesh).
 */
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { generateKeyPair, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { PrivateKey } from '@libp2p/interface'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { createLibp2p } from 'libp2p'
import pino from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { issueCertificate } from '../../../src/node/membership/certs.ts'
import {
  loadMesh,
  type MeshCredentials,
  saveCert,
  saveMeshInfo,
  writeFileAtomic,
} from '../../../src/node/membership/files.ts'
import { Membership } from '../../../src/node/membership/membership.ts'
import { createMesh } from '../../../src/node/membership/setup.ts'

const ECHO = '/test/echo/1.0.0'
const cleanup: Array<() => Promise<void> | void> = []
afterEach(async () => {
  for (const f of cleanup.splice(0).reverse()) await f()
})

async function node(key: PrivateKey, dir: string, creds: MeshCredentials) {
  const n = await createLibp2p({
    start: false,
    privateKey: key,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: preSharedKey({ psk: creds.swarmKey }),
    services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }) },
  })
  await n.handle(ECHO, (stream) => {
    stream.addEventListener('message', (evt) => {
      stream.send(evt.data.subarray())
      void stream.close()
    })
  })
  const m = await Membership.open({ dataDir: dir, creds, log: pino({ level: 'silent' }) })
  await m.attach(n as never, [ECHO])
  await n.start()
  m.start()
  cleanup.push(async () => {
    m.stop()
    await n.stop()
  })
  return { n, m }
}

async function twoMembers() {
  const root = mkdtempSync(join(tmpdir(), 'gridnode-gate-'))
  cleanup.push(() => rmSync(root, { recursive: true, force: true }))
  const ka = await generateKeyPair('Ed25519')
  const kb = await generateKeyPair('Ed25519')
  const da = join(root, 'a')
  const db = join(root, 'b')
  mkdirSync(da)
  mkdirSync(db)
  const credsA = await createMesh(da, 'lab', ka)
  const cert = await issueCertificate(credsA.meshPrivateKey!, {
    mesh: 'lab',
    peer: kb.publicKey.toString(),
    issued: Date.now(),
    expires: Date.now() + 3600_000,
  })
  saveMeshInfo(db, credsA.info)
  writeFileAtomic(join(db, 'swarm.key'), credsA.swarmKey)
  writeFileAtomic(join(db, 'identity.key'), privateKeyToProtobuf(kb))
  saveCert(db, cert.bytes)
  return { a: await node(ka, da, credsA), b: await node(kb, db, loadMesh(db)!) }
}

async function echo(from: Awaited<ReturnType<typeof node>>['n'], to: Awaited<ReturnType<typeof node>>['n']) {
  const stream = await from.dialProtocol(to.getMultiaddrs()[0], ECHO, { signal: AbortSignal.timeout(8000) })
  const answered = new Promise<number>((resolve) =>
    stream.addEventListener('message', (evt) => resolve(evt.data.subarray()[0])),
  )
  stream.send(new Uint8Array([42]))
  return answered
}

describe('the membership gate', () => {
  it('opens gated streams between members, both ways', async () => {
    const { a, b } = await twoMembers()
    expect(await echo(b.n, a.n)).toBe(42)
    expect(await echo(a.n, b.n)).toBe(42)
    expect(a.m.isMember(b.n.peerId.toString())).toBe(true)
    expect(b.m.isMember(a.n.peerId.toString())).toBe(true)
  })

  it('lets a stream through once the peer proves itself, though our own hello to it just failed', async () => {
    const { a, b } = await twoMembers()
    const aId = a.n.peerId.toString()
    const bId = b.n.peerId.toString()
    type Inside = {
      helloFailedAt: Map<string, number>
      members: Map<string, { peer: string; expires: number; lastSeen: number }>
      hello(peer: string, ms: number): Promise<boolean>
    }
    // As after a joining node's throwaway connection: a's hello to b failed a moment ago...
    ;(a.m as unknown as Inside).helloFailedAt.set(bId, Date.now())
    // ...and b proves itself only a little later (its hello is held back here).
    ;(b.m as unknown as Inside).members.set(aId, {
      peer: aId,
      expires: Date.now() + 60_000,
      lastSeen: Date.now(),
    })
    await b.n.dial(a.n.getMultiaddrs()[0])
    setTimeout(() => void (b.m as unknown as Inside).hello(aId, 5000), 300)
    expect(await echo(a.n, b.n)).toBe(42)
    expect(a.m.isMember(bId)).toBe(true)
  })
})
