/**
 * Our outbound protocol clients, one set per peer, each holding one
 * long-lived stream per protocol. Results to one owner are coalesced: every
 * result produced in one turn of the event loop goes out in one message.
 */
import type { PeerId } from '@libp2p/interface'
import { peerIdFromString } from '@libp2p/peer-id'
import {
  BLOB_PROTOCOL,
  fetchBlob,
  LEASE_PROTOCOL,
  LeaseClient,
  type OpenStream,
  RESULT_PROTOCOL,
  ResultClient,
  STEAL_PROTOCOL,
  StealClient,
} from '../protocol/index.ts'
import type { Batch, TaskResult } from '../scheduler/types.ts'
import type { GridLibp2p } from './create-node.ts'

interface Link {
  steal: StealClient
  result: ResultClient
  lease: LeaseClient
}

export interface PeerLinksOptions {
  /** A steal we gave up on was granted after all: the batch is in our custody now. */
  onLateBatch(from: string, batch: Batch): void
}

export class PeerLinks {
  private readonly node: GridLibp2p
  private readonly opts: PeerLinksOptions
  private readonly links = new Map<string, Link>()
  private readonly outbox = new Map<string, TaskResult[]>()
  private flushScheduled = false
  private flushHandler?: (to: string, results: TaskResult[]) => void

  constructor(node: GridLibp2p, opts: PeerLinksOptions) {
    this.node = node
    this.opts = opts
  }

  /**
   * Opens streams to `peerKey`. The key is parsed here, on first use: a key
   * that is no peer ID (say a job owner a peer made up) fails that request
   * with a rejected promise, never a throw out of a timer or handler.
   */
  opener(peerKey: string, protocol: string): OpenStream {
    let peer: PeerId | undefined
    return (signal) => {
      try {
        peer ??= peerIdFromString(peerKey)
      } catch (err) {
        return Promise.reject(new Error(`not a peer ID: ${peerKey.slice(0, 64)}`, { cause: err }))
      }
      return this.node.dialProtocol(peer, protocol, { signal })
    }
  }

  /** The clients for one peer; never throws (a bad key fails each request instead). */
  get(peerKey: string): Link {
    let link = this.links.get(peerKey)
    if (!link) {
      link = {
        steal: new StealClient(this.opener(peerKey, STEAL_PROTOCOL), {
          timeoutMs: 10_000,
          onLateBatch: (batch) => this.opts.onLateBatch(peerKey, batch),
        }),
        result: new ResultClient(this.opener(peerKey, RESULT_PROTOCOL), { timeoutMs: 30_000 }),
        lease: new LeaseClient(this.opener(peerKey, LEASE_PROTOCOL), { timeoutMs: 10_000 }),
      }
      this.links.set(peerKey, link)
    }
    return link
  }

  /** Drops a peer's streams (it left); the next use dials afresh. */
  drop(peerKey: string): void {
    const link = this.links.get(peerKey)
    if (!link) return
    this.links.delete(peerKey)
    link.steal.close()
    link.result.close()
    link.lease.close()
  }

  /** Queues results for an owner; everything queued in this turn leaves as one message. */
  queueResults(to: string, results: TaskResult[], send: (to: string, results: TaskResult[]) => void): void {
    this.flushHandler = send
    const list = this.outbox.get(to)
    if (list) list.push(...results)
    else this.outbox.set(to, [...results])
    if (!this.flushScheduled) {
      this.flushScheduled = true
      setImmediate(() => this.flush())
    }
  }

  private flush(): void {
    this.flushScheduled = false
    const batches = [...this.outbox]
    this.outbox.clear()
    for (const [to, results] of batches) this.flushHandler?.(to, results)
  }

  fetchBlob(from: string, hash: string): Promise<Uint8Array | undefined> {
    return fetchBlob(this.opener(from, BLOB_PROTOCOL), hash, { timeoutMs: 30_000 })
  }

  close(): void {
    for (const key of [...this.links.keys()]) this.drop(key)
  }
}
