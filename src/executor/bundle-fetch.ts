/**
 * Where a worker's bundle comes from when the blob cache lacks it: the job's
 * owner first (it has every bundle of its jobs), then every connected peer,
 * each asked once; the first answer wins. The transport is passed in (the
 * daemon's blob protocol), so this side knows nothing of libp2p.
 */

export interface BundleSourcesOptions {
  /** This node (never asked). */
  self: string
  /** Peers connected now. */
  peers(): string[]
  /** One peer's copy of a blob, or undefined if it has none. */
  fetchBlob(peer: string, hash: string): Promise<Uint8Array | undefined>
  /** Bytes fetched (metrics). */
  onFetched?(bytes: number): void
  /** A peer that failed to answer (the next is asked). */
  onError?(peer: string, hash: string, err: Error): void
}

export class BundleSources {
  private readonly o: BundleSourcesOptions
  /** Which peer owns each bundle we may need: the job's owner has it. */
  private readonly owners = new Map<string, string>()

  constructor(o: BundleSourcesOptions) {
    this.o = o
  }

  /** A task of `owner`'s job runs bundle `hash` here: ask `owner` first when fetching it. */
  ownedBy(hash: string, owner: string): void {
    this.owners.set(hash, owner)
  }

  /** The bundle's bytes from the first source that has them; throws naming how many were asked. */
  async fetch(hash: string): Promise<Uint8Array> {
    const candidates = [this.owners.get(hash), ...this.o.peers()].filter(
      (p, i, all): p is string => p !== undefined && p !== this.o.self && all.indexOf(p) === i,
    )
    for (const peer of candidates) {
      try {
        const bytes = await this.o.fetchBlob(peer, hash)
        if (bytes) {
          this.o.onFetched?.(bytes.byteLength)
          return bytes
        }
      } catch (err) {
        this.o.onError?.(peer, hash, err as Error)
      }
    }
    throw new Error(`bundle ${hash.slice(0, 12)} is not available from ${candidates.length} peers`)
  }
}
