/**
 * A hostile peer for integration tests: a real libp2p node in the test
 * process that speaks our transports and gossip, claims this mesh's DHT
 * protocol so it is not hung up on, and then sends whatever bytes a test asks.
 */
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { gossipsub } from '@libp2p/gossipsub'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { tcp } from '@libp2p/tcp'
import { multiaddr } from '@multiformats/multiaddr'
import { createLibp2p } from 'libp2p'

export async function createAttacker(mesh = 'default') {
  const node = await createLibp2p({
    addresses: { listen: ['/ip4/127.0.0.1/tcp/0'] },
    transports: [tcp()],
    connectionEncrypters: [noise()],
    streamMuxers: [yamux()],
    services: {
      identify: identify(),
      ping: ping(),
      pubsub: gossipsub({
        allowPublishToZeroTopicPeers: true,
        emitSelf: false,
        globalSignaturePolicy: 'StrictSign',
      }),
    },
  })
  // Look like a member so the daemon does not hang up after identify.
  await node.handle(`/gridnode/${mesh}/kad/1.0.0`, (stream) => void stream.close())
  return {
    node,
    async connect(addr: string) {
      await node.dial(multiaddr(addr))
    },
    /** Opens a stream on `protocol`, writes raw bytes, and returns what came back (if anything) before the stream ended. */
    async sendRaw(addr: string, protocol: string, bytes: Uint8Array): Promise<string> {
      try {
        const stream = await node.dialProtocol(multiaddr(addr), protocol, {
          signal: AbortSignal.timeout(5000),
        })
        stream.send(bytes)
        await stream.close({ signal: AbortSignal.timeout(3000) }).catch(() => {})
        return stream.status
      } catch (err) {
        return `error: ${(err as Error).message}`
      }
    },
  }
}
