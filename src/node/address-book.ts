/**
 * Where members were last reachable, kept across restarts (`<data-dir>/peers.json`).
 *
 * A mesh's only other memory of addresses is the one baked into each join token, and a node on
 * the default listen address (`tcp/0`) comes back on a new port after a restart: without mDNS a
 * mesh whose nodes had restarted never found itself again (found by a new-user trial). So a node
 * notes the listen addresses each verified member announces (identify), and dials them at its
 * next start alongside its bootstrap addresses; the rendezvous finds every other member from the
 * first one reached.
 *
 * What a member announces is its word: only addresses at the IP address its connection really
 * came from or went to are kept, so a member cannot make others dial a third party's machine at
 * their next start. Bounded: MAX_PEERS members (the most recently seen), MAX_ADDRS each.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { multiaddr } from '@multiformats/multiaddr'
import { writeFileAtomic } from './membership/files.ts'

export const ADDRESS_BOOK_FILE = 'peers.json'
export const MAX_PEERS = 64
export const MAX_ADDRS = 4

interface Entry {
  addrs: string[]
  seenAt: number
}

interface BookFile {
  version: 1
  peers: Record<string, Entry>
}

export class AddressBook {
  private readonly path: string
  private readonly peers = new Map<string, Entry>()
  private dirty = false

  constructor(dataDir: string) {
    this.path = join(dataDir, ADDRESS_BOOK_FILE)
    this.read()
  }

  /** Dialable addresses (`…/p2p/<peer>`) of the members last seen, most recent first. */
  dialable(except: string): string[] {
    return [...this.peers.entries()]
      .filter(([peer]) => peer !== except)
      .sort((a, b) => b[1].seenAt - a[1].seenAt)
      .flatMap(([peer, e]) => e.addrs.map((a) => `${a}/p2p/${peer}`))
  }

  /**
   * Notes what `peer` (a verified member) announced, keeping the addresses at `observedHost`, the IP
   * address of the connection it announced them on.
   */
  note(peer: string, announced: readonly string[], observedHost: string | undefined, now: number): void {
    if (observedHost === undefined) return
    const addrs = [
      ...new Set(announced.filter((a) => hostOf(a) === observedHost && !a.includes('/p2p/'))),
    ].slice(0, MAX_ADDRS)
    if (addrs.length === 0) return
    const before = this.peers.get(peer)
    this.peers.delete(peer) // re-inserted last: the Map's order is the eviction order
    this.peers.set(peer, { addrs, seenAt: now })
    if (before === undefined || before.addrs.join() !== addrs.join()) this.dirty = true
    while (this.peers.size > MAX_PEERS) {
      const oldest = [...this.peers.entries()].sort((a, b) => a[1].seenAt - b[1].seenAt)[0][0]
      this.peers.delete(oldest)
      this.dirty = true
    }
  }

  /** Forgets a peer (revoked, or no longer a member). */
  forget(peer: string): void {
    if (this.peers.delete(peer)) this.dirty = true
  }

  /**
   * Writes the file if anything changed, with the peers `keep` says are members (a peer is
   * identified before its membership is checked); atomically; a failure is the caller's to log.
   */
  save(keep: (peer: string) => boolean = () => true): void {
    if (!this.dirty) return
    const file: BookFile = {
      version: 1,
      peers: Object.fromEntries([...this.peers].filter(([peer]) => keep(peer))),
    }
    writeFileAtomic(this.path, `${JSON.stringify(file, null, 2)}\n`)
    this.dirty = false
  }

  /** A missing, unreadable or malformed file is an empty book: it is only a hint. */
  private read(): void {
    let file: unknown
    try {
      file = JSON.parse(readFileSync(this.path, 'utf8'))
    } catch {
      return
    }
    const peers = (file as Partial<BookFile> | null)?.peers
    if (peers === null || typeof peers !== 'object') return
    for (const [peer, e] of Object.entries(peers).slice(0, MAX_PEERS)) {
      if (!/^[1-9A-HJ-NP-Za-km-z]{32,128}$/.test(peer) || e === null || typeof e !== 'object') continue
      const addrs = Array.isArray(e.addrs)
        ? e.addrs
            .filter((a): a is string => typeof a === 'string' && hostOf(a) !== undefined)
            .slice(0, MAX_ADDRS)
        : []
      if (addrs.length > 0) this.peers.set(peer, { addrs, seenAt: Number(e.seenAt) || 0 })
    }
  }
}

/** The IP address of a TCP multiaddr, or undefined for anything else (or malformed). */
export function hostOf(addr: string): string | undefined {
  try {
    const parts = multiaddr(addr).getComponents()
    const ip = parts[0]
    if ((ip?.name !== 'ip4' && ip?.name !== 'ip6') || parts[1]?.name !== 'tcp') return undefined
    return ip.value
  } catch {
    return undefined
  }
}
