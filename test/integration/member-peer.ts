/**
 * A member peer driven from the test process: a real invitation redeemed, the real membership
 * handshake, real libp2p over loopback, and whatever protocol handlers an attack needs (like
 * fixtures/hostile-member.ts, which runs scripted attacks in a process of its own).
 */
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { PrivateKey, Stream } from '@libp2p/interface'
import { kadDHT, removePublicAddressesMapper } from '@libp2p/kad-dht'
import { peerIdFromString } from '@libp2p/peer-id'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { tcp } from '@libp2p/tcp'
import { lpStream } from '@libp2p/utils'
import { multiaddr } from '@multiformats/multiaddr'
import { decode as cborDecode, encode as cborEncode } from 'cborg'
import { createLibp2p } from 'libp2p'
import { pino } from 'pino'
import type { GridLibp2p } from '../../src/node/create-node.ts'
import { newIdentity } from '../../src/node/data-dir.ts'
import { noiseCrypto } from '../../src/node/noise-crypto.ts'
import '../../src/node/xsalsa20-fix.ts'
import '../../src/node/yamux-window.ts'
import { loadMesh } from '../../src/node/membership/files.ts'
import { Membership } from '../../src/node/membership/membership.ts'
import { checkToken, redeemInvitation } from '../../src/node/membership/setup.ts'
import type { CapacityAdvert } from '../../src/protocol/advert/codec.ts'
import type { TestMesh } from './harness.ts'

export const MiB = 1024 * 1024

export interface Member {
  node: GridLibp2p
  peerId: string
  privateKey: Awaited<ReturnType<typeof newIdentity>>
  /** Dials and proves membership to a daemon. */
  join(addr: string): Promise<boolean>
  /** One raw-CBOR request on a fresh stream; the decoded reply or how it failed. */
  rpc(peer: string, protocol: string, msg: Record<string, unknown>, timeoutMs?: number): Promise<unknown>
  open(peer: string, protocol: string): Promise<Stream>
  stop(): Promise<void>
}

export async function member(mesh: TestMesh, name = 'member-peer'): Promise<Member> {
  const dataDir = join(mesh.root, name)
  mkdirSync(dataDir, { recursive: true })
  const token = checkToken(await mesh.invite())
  const privateKey = await newIdentity()
  await redeemInvitation(dataDir, token, { key: privateKey, isNew: true })
  const creds = loadMesh(dataDir)
  if (creds === undefined) throw new Error('no mesh credentials')
  const log = pino({ level: 'warn' }, pino.destination({ dest: 2, sync: true }))
  const node = await peerNode(privateKey, creds.swarmKey, creds.info.name)
  const membership = await Membership.open({ dataDir, creds, log })
  await membership.attach(node, [])
  await node.start()
  membership.start()
  const target = (t: string) => (t.startsWith('/') ? multiaddr(t) : peerIdFromString(t))
  const open = (peer: string, protocol: string) =>
    node.dialProtocol(target(peer), protocol, { signal: AbortSignal.timeout(5000) })
  return {
    node,
    privateKey,
    peerId: node.peerId.toString(),
    async join(addr) {
      await node.dial(multiaddr(addr), { signal: AbortSignal.timeout(5000) })
      const remote = addr.split('/p2p/')[1]
      for (let i = 0; i < 16; i++) {
        if (await membership.ensure(remote)) return true
        await new Promise((r) => setTimeout(r, 500))
      }
      return false
    },
    open,
    async rpc(peer, protocol, msg, timeoutMs = 10_000) {
      let stream: Stream
      try {
        stream = await open(peer, protocol)
      } catch (err) {
        return { refused: (err as Error).message }
      }
      const lp = lpStream(stream, { maxDataLength: 32 * MiB })
      try {
        await lp.write(cborEncode({ v: 1, ...msg }))
        const bytes = (await lp.read({ signal: AbortSignal.timeout(timeoutMs) })).subarray()
        await stream.close().catch(() => {})
        return { reply: cborDecode(bytes, { useMaps: false }) }
      } catch (err) {
        try {
          stream.abort(err as Error)
        } catch {}
        return { closed: `${(err as Error).name}: ${(err as Error).message.slice(0, 200)}` }
      }
    },
    async stop() {
      membership.stop?.()
      await node.stop()
    },
  }
}

/**
 * A libp2p node built like a daemon's (TCP, Noise, Yamux, the mesh's DHT protocol and gossip),
 * not started; with `swarmKey`, behind the mesh's private network. Also used by
 * fixtures/hostile-member.ts, whose attacker runs in a process of its own.
 */
export async function peerNode(
  privateKey: PrivateKey | undefined,
  swarmKey: Uint8Array | undefined,
  mesh: string,
): Promise<GridLibp2p> {
  return (await createLibp2p({
    start: false,
    privateKey,
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    // The daemon's own cipher settings: an attacker is no slower a sender than a daemon.
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    streamMuxers: [yamux()],
    connectionProtector: swarmKey ? preSharedKey({ psk: swarmKey, timeout: 3000 }) : undefined,
    connectionManager: { dialTimeout: 4000, inboundConnectionThreshold: 200 },
    services: {
      identify: identify(),
      ping: ping(),
      dht: kadDHT({
        protocol: `/gridnode/${mesh}/kad/1.0.0`,
        clientMode: false,
        peerInfoMapper: removePublicAddressesMapper,
        allowQueryWithZeroPeers: false,
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        fallbackToFloodsub: false,
        globalSignaturePolicy: 'StrictSign',
      }),
    },
  })) as unknown as GridLibp2p
}

/**
 * A valid advert of `peerId` in `mesh` (one node of 4 CPUs, busy, nothing ready), with the
 * fields and scheduler fields given replaced: what an attacking member publishes.
 */
export function advertOf(
  mesh: string,
  peerId: string,
  over: Partial<Omit<CapacityAdvert, 'sched'>> = {},
  sched: Partial<CapacityAdvert['sched']> = {},
): CapacityAdvert {
  return {
    v: 1,
    mesh,
    peerId,
    seq: 1,
    sentAtMs: Date.now(),
    version: '0.1.0',
    cpus: 4,
    load1: 0,
    memoryTotalMB: 1024,
    memoryFreeMB: 512,
    gpus: [],
    ...over,
    sched: {
      slots: 4,
      freeSlots: 0,
      memoryMB: 1024,
      freeMemoryMB: 1024,
      gpus: 0,
      freeGpus: 0,
      ready: [],
      running: 4,
      meanTaskMs: 0,
      ...sched,
    },
  }
}

/** Whether a process is still alive. */
export function alive(pid: number | undefined): boolean {
  if (pid === undefined) return false
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}
