/**
 * Mesh membership beyond bootstrap and mDNS: DHT rendezvous. Every member
 * provides a key derived from the mesh name and looks up the other providers,
 * dialing those it is not connected to, so a node that knows one bootstrap
 * peer comes to know every member. Peers whose identify shows they do not
 * speak this mesh's DHT protocol are hung up on: another mesh stays out.
 */
import type { PeerId } from '@libp2p/interface'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
import type { GridLibp2p } from './create-node.ts'
import { dhtProtocol } from './create-node.ts'
import type { Logger } from './logger.ts'

/** A node with no connection says so once after this long, then every ISOLATED_REWARN_MS. */
const ISOLATED_WARN_MS = 15_000
const ISOLATED_REWARN_MS = 300_000

export async function rendezvousKey(mesh: string): Promise<CID> {
  return CID.createV1(
    raw.code,
    await sha256.digest(new TextEncoder().encode(`gridnode/${mesh}/rendezvous/1`)),
  )
}

export interface DiscoveryOptions {
  mesh: string
  /** Re-dialed while this node has no connection at all (a bootstrap peer may start later or refuse at first). */
  bootstrap: string[]
  /** Look-up period once the mesh is stable; early look-ups are faster. */
  intervalMs: number
  log: Logger
}

export class Discovery {
  private readonly node: GridLibp2p
  private readonly opts: DiscoveryOptions
  private readonly controller = new AbortController()
  private loop?: Promise<void>
  private key?: CID
  private provided = false

  constructor(node: GridLibp2p, opts: DiscoveryOptions) {
    this.node = node
    this.opts = opts
  }

  start(): void {
    const protocol = dhtProtocol(this.opts.mesh)
    this.node.addEventListener('peer:identify', (evt) => {
      const { peerId, protocols } = evt.detail
      if (!protocols.includes(protocol)) {
        this.opts.log.debug({ peer: peerId.toString() }, 'hanging up on a peer of another mesh')
        void this.node.hangUp(peerId).catch(() => {})
      }
    })
    // Discovered peers (bootstrap, mDNS) are dialed at once; identify then decides whether they stay.
    this.node.addEventListener('peer:discovery', (evt) => {
      void this.dial(evt.detail.id)
    })
    this.loop = this.run()
  }

  async stop(): Promise<void> {
    this.controller.abort()
    await this.loop?.catch(() => {})
  }

  private async dial(peer: PeerId): Promise<void> {
    if (peer.equals(this.node.peerId) || this.node.getConnections(peer).length > 0) return
    try {
      await this.node.dial(peer, {
        signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(5000)]),
      })
    } catch (err) {
      this.opts.log.debug({ peer: peer.toString(), err: (err as Error).message }, 'dial failed')
    }
  }

  private async redialBootstrap(): Promise<void> {
    for (const addr of this.opts.bootstrap) {
      try {
        await this.node.dial(multiaddr(addr), {
          signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(5000)]),
        })
      } catch (err) {
        this.opts.log.debug({ addr, err: (err as Error).message }, 'bootstrap dial failed')
      }
    }
  }

  /** Provide and look up the rendezvous key: quickly while the mesh forms, then every intervalMs. */
  private async run(): Promise<void> {
    const signal = this.controller.signal
    this.key = await rendezvousKey(this.opts.mesh)
    let round = 0
    let isolatedRounds = 0
    let isolatedSince: number | undefined
    let warnAt = ISOLATED_WARN_MS
    while (!signal.aborted) {
      const connected = this.node.getConnections().length > 0
      if (connected) isolatedSince = undefined
      else isolatedSince ??= performance.now()
      const tried = this.opts.bootstrap.length
      // Failed dials are debug lines: a person needs to hear once that nobody answers. (A node
      // with no address to try is a mesh's first, or relies on mDNS: alone is no news there.)
      if (!connected && tried > 0 && performance.now() - isolatedSince! >= warnAt) {
        this.opts.log.warn(
          { addresses: this.opts.bootstrap.slice(0, 8) },
          `no member reachable after ${Math.round(warnAt / 1000)} s: none of the ${tried} known addresses (--bootstrap, the invitation's, members last seen) answers; start a member, or restart with --bootstrap <a running member's address>`,
        )
        warnAt += ISOLATED_REWARN_MS
      }
      if (connected) await this.roundTrip(round++)
      else if (++isolatedRounds % 4 === 0) await this.redialBootstrap()
      const delay = !connected ? 250 : round < 5 ? 500 * round : this.opts.intervalMs
      await sleep(delay, signal)
    }
  }

  private async roundTrip(round: number): Promise<void> {
    const signal = AbortSignal.any([this.controller.signal, AbortSignal.timeout(5000)])
    const key = this.key!
    try {
      if (!this.provided || round % 12 === 0) {
        await this.node.contentRouting.provide(key, { signal })
        this.provided = true
      }
    } catch (err) {
      this.opts.log.debug({ err: (err as Error).message }, 'rendezvous provide failed')
    }
    try {
      for await (const provider of this.node.contentRouting.findProviders(key, { signal })) {
        if (!provider.id.equals(this.node.peerId) && this.node.getConnections(provider.id).length === 0) {
          if (provider.multiaddrs.length > 0)
            await this.node.peerStore.merge(provider.id, { multiaddrs: provider.multiaddrs })
          void this.dial(provider.id)
        }
      }
    } catch (err) {
      if (!this.controller.signal.aborted) {
        this.opts.log.debug({ err: (err as Error).message }, 'rendezvous lookup ended')
      }
    }
  }
}

function sleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve()
    const t = setTimeout(done, ms)
    function done(): void {
      clearTimeout(t)
      signal.removeEventListener('abort', done)
      resolve()
    }
    signal.addEventListener('abort', done, { once: true })
  })
}
