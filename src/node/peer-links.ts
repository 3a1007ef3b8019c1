/**
 * Our outbound protocol clients, one set per peer, each holding one
 * long-lived stream per protocol. Results to one owner are coalesced: one
 * results message is in flight per owner, and what is produced meanwhile
 * leaves in one message when it is acked (or failed): batches grow with the
 * rate, with no timer, and a lone result leaves at once.
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
import { MAX_RESULTS } from '../protocol/schemas.ts'
import type { Batch, TaskResult } from '../scheduler/types.ts'
import type { GridLibp2p } from './create-node.ts'

/** Value bytes per results message (the protocol's cap is 16 MiB; values over 1 MiB travel as blob references). */
const RESULT_BATCH_BYTES = 8 * 1024 * 1024

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
  /** Owners with a results message on its way. */
  private readonly sending = new Set<string>()
  private flushScheduled = false
  private flushHandler?: (to: string, results: TaskResult[]) => Promise<unknown>

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

  /**
   * Queues results for an owner. They leave at the end of this turn of the event loop, or, while
   * a message to that owner is unanswered, with everything queued by then once it is answered.
   * `send` settles when the owner answered or the send failed.
   */
  queueResults(
    to: string,
    results: TaskResult[],
    send: (to: string, results: TaskResult[]) => Promise<unknown>,
  ): void {
    this.flushHandler = send
    const list = this.outbox.get(to)
    if (list) list.push(...results)
    else this.outbox.set(to, [...results])
    if (!this.sending.has(to)) this.scheduleFlush()
  }

  private scheduleFlush(): void {
    if (this.flushScheduled) return
    this.flushScheduled = true
    setImmediate(() => this.flush())
  }

  private flush(): void {
    this.flushScheduled = false
    for (const [to, results] of [...this.outbox]) {
      if (this.sending.has(to)) continue
      this.outbox.delete(to)
      this.sending.add(to)
      const sent = resultBatches(results).map((batch) => this.flushHandler!(to, batch))
      void Promise.allSettled(sent).then(() => {
        this.sending.delete(to)
        if (this.outbox.has(to)) this.scheduleFlush()
      })
    }
  }

  fetchBlob(from: string, hash: string): Promise<Uint8Array | undefined> {
    return fetchBlob(this.opener(from, BLOB_PROTOCOL), hash, { timeoutMs: 30_000 })
  }

  close(): void {
    for (const key of [...this.links.keys()]) this.drop(key)
  }
}

/** Splits results into messages within the protocol's count and (value) size limits. */
function resultBatches(results: TaskResult[]): TaskResult[][] {
  const out: TaskResult[][] = []
  let batch: TaskResult[] = []
  let bytes = 0
  for (const r of results) {
    const size = r.outcome.status === 'ok' ? (r.outcome.value?.byteLength ?? 0) : 0
    if (batch.length > 0 && (batch.length >= MAX_RESULTS || bytes + size > RESULT_BATCH_BYTES)) {
      out.push(batch)
      batch = []
      bytes = 0
    }
    batch.push(r)
    bytes += size
  }
  if (batch.length > 0) out.push(batch)
  return out
}
