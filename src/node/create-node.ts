/**
 * Assembles the libp2p node: TCP + Noise + Yamux, identify, ping, a
 * mesh-scoped Kademlia DHT, gossipsub, mDNS and bootstrap. Settings here are
 * the ones DESIGN.md found to work on loopback and LANs.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { bootstrap } from '@libp2p/bootstrap'
import { type GossipSub, gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import type { ConnectionGater, PeerDiscovery, PeerInfo, PrivateKey } from '@libp2p/interface'
import { type KadDHT, kadDHT, passthroughMapper, removePublicAddressesMapper } from '@libp2p/kad-dht'
import { mdns } from '@libp2p/mdns'
import { ping } from '@libp2p/ping'
import { preSharedKey } from '@libp2p/pnet'
import { prometheusMetrics } from '@libp2p/prometheus-metrics'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p, type Libp2p } from 'libp2p'
import type { Registry } from 'prom-client'
import type { NodeConfig } from './config/schema.ts'
import { corkedWrites } from './cork.ts'
import { noiseCrypto } from './noise-crypto.ts'
import './length-prefix-fix.ts'
import './xsalsa20-fix.ts'
import './yamux-window.ts'

export type GridLibp2p = Libp2p<{
  identify: ReturnType<ReturnType<typeof identify>>
  ping: ReturnType<ReturnType<typeof ping>>
  dht: KadDHT
  pubsub: GossipSub
}>

/**
 * A gossip message's id before its signature is checked: its publisher and sequence number, what
 * the message id is made of under StrictSign. Without it gossipsub verifies the signature of
 * every copy it receives (one from each mesh peer that forwards it, an Ed25519 verification of
 * about 0.1 ms here) and only then finds it a duplicate: with 4 daemons busy on a job, a third
 * of their signature checks were of adverts already seen. A copy is dropped on this id only once
 * a copy with a valid signature went through (gossipsub caches it after validating), so a
 * forged copy cannot shadow the real message; a message without the two fields fails StrictSign.
 */
export function gossipFastMsgId(msg: { from?: Uint8Array; seqno?: Uint8Array }): string {
  if (msg.from === undefined || msg.seqno === undefined) return ''
  const from = Buffer.from(msg.from.buffer, msg.from.byteOffset, msg.from.byteLength)
  const seqno = Buffer.from(msg.seqno.buffer, msg.seqno.byteOffset, msg.seqno.byteLength)
  return `${from.toString('base64')}:${seqno.toString('hex')}`
}

export function dhtProtocol(mesh: string): string {
  return `/gridnode/${mesh}/kad/1.0.0`
}

export function capacityTopic(mesh: string): string {
  return `gridnode/${mesh}/capacity/1`
}

/** True when every listen address is loopback or private: the DHT must then keep those addresses. */
function listensPrivately(listen: string[]): boolean {
  return listen.every((a) => {
    const host = multiaddr(a).getComponents()[1]?.value ?? ''
    return (
      host === '0.0.0.0' ||
      host === '::' ||
      /^(127\.|10\.|192\.168\.|172\.(1[6-9]|2\d|3[01])\.|169\.254\.)/.test(host) ||
      host === '::1' ||
      host.startsWith('fe80:') ||
      host.startsWith('fd')
    )
  })
}

/** Gossipsub's stream protocols: gated by membership like our own. */
export const GOSSIP_PROTOCOLS = ['/meshsub/1.2.0', '/meshsub/1.1.0', '/meshsub/1.0.0', '/floodsub/1.0.0']

export interface NodeSecurity {
  /** The swarm.key file: without it no connection forms (libp2p private networks). */
  swarmKey: Uint8Array
  /** Refuses revoked peers before their handshake completes. */
  gater: ConnectionGater
  /** Where libp2p's own metrics (and the process's) go: the daemon's /metrics registry (src/node/metrics.ts). */
  metrics?: Registry
}

export async function createNode(
  config: NodeConfig,
  privateKey: PrivateKey,
  security: NodeSecurity,
): Promise<GridLibp2p> {
  // A wildcard listen address serves LAN and internet alike: keep every address the peer tells us.
  // Private-only listeners keep private addresses; a public-only mesh uses the DHT's default.
  const mapper: (p: PeerInfo) => PeerInfo = listensPrivately(config.listen)
    ? config.listen.some((a) => a.includes('/0.0.0.0/') || a.includes('/::/'))
      ? passthroughMapper
      : removePublicAddressesMapper
    : (p) => p
  // biome-ignore lint/suspicious/noExplicitAny: each discovery module names its own component subset
  const peerDiscovery: Array<(components: any) => PeerDiscovery> = []
  if (config.bootstrap.length > 0) {
    peerDiscovery.push(bootstrap({ list: config.bootstrap, timeout: 100 }))
  }
  if (config.mdns) {
    peerDiscovery.push(mdns({ serviceTag: `_gridnode-${config.mesh}._udp.local`, interval: 5000 }))
  }
  // Not started: the daemon first registers the membership protocol and middleware.
  return createLibp2p({
    start: false,
    privateKey,
    addresses: { listen: config.listen },
    transports: [tcp()],
    connectionEncrypters: [noise({ crypto: noiseCrypto })],
    // A stream paused (serve.ts: its peer over its cost budget) keeps what arrives in the stream's
    // own buffer, up to the window already granted (yamux grows it to 16 MiB); past yamux's 4 MiB
    // default the stream was aborted, and with it every request pending on it.
    streamMuxers: [yamux({ streamOptions: { maxReadBufferLength: 17 * 1024 * 1024 } })],
    connectionProtector: corkedWrites(preSharedKey({ psk: security.swarmKey })),
    connectionGater: security.gater,
    // preserveExistingMetrics: libp2p's default clears prom-client's global registry, which is not ours to clear.
    metrics:
      security.metrics === undefined
        ? undefined
        : prometheusMetrics({ registry: security.metrics, preserveExistingMetrics: true }),
    peerDiscovery,
    // Frozen peers are noticed in 3-5 s instead of ~12 s; leases catch the rest. A failed ping
    // drops the whole connection, and a ping waits behind file data on a busy connection and
    // behind the CPU on a loaded machine: with a 1-2 s timeout, daemons moving a 1 GB file on
    // two cores lost their connections. So at least 3 s, and up to 10 s when pings are slow
    // (the timeout follows 1.2 x their moving average).
    connectionMonitor: { pingInterval: 2000, pingTimeout: { minTimeout: 3000, maxTimeout: 10_000 } },
    connectionManager: {
      maxConnections: 300,
      dialTimeout: 5000,
      // Many members behind one address (a lab NAT, or tests on loopback) join at once:
      // the defaults (5 inbound per second per host) reset most of them.
      inboundConnectionThreshold: 200,
      maxIncomingPendingConnections: 100,
    },
    services: {
      identify: identify(),
      // The connection monitor pings every 2 s with a timeout of up to 10 s: slow pings overlap,
      // and a ping stream over the per-connection limit (1 out, 2 in by default) fails the ping,
      // which drops the connection.
      ping: ping({ maxOutboundStreams: 8, maxInboundStreams: 8 }),
      dht: kadDHT({
        protocol: dhtProtocol(config.mesh),
        clientMode: false,
        peerInfoMapper: mapper,
        allowQueryWithZeroPeers: false,
        // Departed members must stop being found: short-lived provider records, re-provided often.
        providers: { provideValidity: 5 * 60_000, cleanupInterval: 60_000 },
        reprovide: { interval: 60_000, validity: 5 * 60_000 },
      }),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        fallbackToFloodsub: false,
        globalSignaturePolicy: 'StrictSign',
        // Adverts are small and frequent; don't let a burst of them be mistaken for spam.
        maxInboundDataLength: 64 * 1024,
        fastMsgIdFn: gossipFastMsgId,
        // IDONTWANT (gossipsub 1.2) tells mesh peers not to forward a message we already have:
        // worth it for large messages, not for adverts (0.7 KB; 3 KB with 16 flows), where the
        // extra control message to every mesh peer for every advert cost more than the copies it
        // saves (profiled: about a sixth of a busy daemon's gossip time). 16 KiB and up still get one.
        idontwantMinDataSize: 16 * 1024,
      }),
    },
  }) as unknown as Promise<GridLibp2p>
}
