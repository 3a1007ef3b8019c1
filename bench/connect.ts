/**
 * What the two membership layers cost one connection: from dial to the
 * first answered request on a gated protocol, between two libp2p nodes in
 * this process over loopback TCP, three ways:
 *   plain       TCP + Noise + Yamux (what gridnode did before private meshes)
 *   pnet        plus the pre-shared-key layer
 *   pnet+cert   plus the membership certificate exchange the gate waits for
 * Each sample is a fresh connection; p50 / p90 over the samples.
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
import { issueCertificate } from '../src/node/membership/certs.ts'
import { loadMesh, saveCert, saveMeshInfo, writeFileAtomic } from '../src/node/membership/files.ts'
import { Membership } from '../src/node/membership/membership.ts'
import { createMesh } from '../src/node/membership/setup.ts'

const ECHO = '/bench/echo/1.0.0'
type Mode = 'plain' | 'pnet' | 'pnet+cert'

async function makeNode(key: PrivateKey, mode: Mode, swarmKey: Uint8Array) {
  const node = await createLibp2p({
    start: false,
    privateKey: key,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    connectionProtector: mode === 'plain' ? undefined : preSharedKey({ psk: swarmKey }),
    services: { identify: identify(), pubsub: gossipsub({ allowPublishToZeroTopicPeers: true }) },
  })
  await node.handle(ECHO, (stream) => {
    stream.addEventListener('message', (evt) => {
      stream.send(evt.data.subarray())
      void stream.close()
    })
  })
  return node
}

async function echoOnce(
  node: Awaited<ReturnType<typeof makeNode>>,
  addr: ReturnType<typeof node.getMultiaddrs>[0],
) {
  const stream = await node.dialProtocol(addr, ECHO, { signal: AbortSignal.timeout(5000) })
  const answered = new Promise<void>((resolve) => stream.addEventListener('message', () => resolve()))
  stream.send(new Uint8Array([1, 2, 3]))
  await answered
}

export async function connectBench(samples = 40): Promise<Record<string, number>> {
  const root = mkdtempSync(join(tmpdir(), 'gridnode-bench-connect-'))
  const log = pino({ level: 'silent' })
  try {
    const keys = { a: await generateKeyPair('Ed25519'), b: await generateKeyPair('Ed25519') }
    const dirs = { a: join(root, 'a'), b: join(root, 'b') }
    for (const d of Object.values(dirs)) mkdirSync(d, { recursive: true })
    // A real mesh: a founds it; b gets a certificate signed by its mesh key.
    const credsA = await createMesh(dirs.a, 'bench', keys.a)
    const certB = await issueCertificate(credsA.meshPrivateKey!, {
      mesh: 'bench',
      peer: keys.b.publicKey.toString(),
      issued: Date.now(),
      expires: Date.now() + 3600_000,
    })
    saveMeshInfo(dirs.b, credsA.info)
    writeFileAtomic(join(dirs.b, 'swarm.key'), credsA.swarmKey)
    saveCert(dirs.b, certB.bytes)
    writeFileAtomic(join(dirs.b, 'identity.key'), privateKeyToProtobuf(keys.b))
    const credsB = loadMesh(dirs.b)!

    const out: Record<string, number> = { samples }
    for (const mode of ['plain', 'pnet', 'pnet+cert'] as Mode[]) {
      const times: number[] = []
      for (let i = 0; i < samples; i++) {
        const a = await makeNode(keys.a, mode, credsA.swarmKey)
        const b = await makeNode(keys.b, mode, credsB.swarmKey)
        const members: Membership[] = []
        if (mode === 'pnet+cert') {
          for (const [node, dir, creds] of [
            [a, dirs.a, credsA],
            [b, dirs.b, credsB],
          ] as const) {
            const m = await Membership.open({ dataDir: dir, creds, log })
            await m.attach(node as never, [ECHO])
            members.push(m)
          }
        }
        await a.start()
        await b.start()
        for (const m of members) m.start()
        const t0 = performance.now()
        await echoOnce(b, a.getMultiaddrs()[0])
        times.push(performance.now() - t0)
        for (const m of members) m.stop()
        await Promise.all([a.stop(), b.stop()])
      }
      times.sort((x, y) => x - y)
      const key = mode.replace('+', '_')
      out[`${key}_p50Ms`] = Number(times[Math.floor(times.length / 2)].toFixed(2))
      out[`${key}_p90Ms`] = Number(times[Math.floor(times.length * 0.9)].toFixed(2))
    }
    return out
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}
