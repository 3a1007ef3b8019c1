/**
 * Capacity adverts over gossipsub: publish ours on change and as a heartbeat,
 * validate theirs in a topic validator (malformed, oversized, foreign-mesh,
 * wrongly signed, stale or replayed adverts are rejected and not forwarded),
 * and keep the peer table, expiring members that miss heartbeats.
 */
import { type Message, TopicValidatorResult } from '@libp2p/gossipsub'
import type { PeerId } from '@libp2p/interface'
import {
  type AdvertFlow,
  type CapacityAdvert,
  decodeAdvert,
  encodeAdvert,
  MAX_ADVERT_FLOWS,
  validateAdvert,
} from '../protocol/advert/codec.ts'
import type { GpuInfo, SchedulerAdvert } from '../scheduler/types.ts'
import { VERSION } from '../version.ts'
import { capacityTopic, type GridLibp2p } from './create-node.ts'
import type { Logger } from './logger.ts'
import { PeerTable } from './peer-table.ts'
import { sampleLoad } from './probe/capacity.ts'

export const SOFTWARE_VERSION = VERSION

export interface AdvertsOptions {
  mesh: string
  intervalMs: number
  expiryFactor: number
  cores: number
  gpus: GpuInfo[]
  memoryTotalMB: number
  log: Logger
  /** The scheduler's part of the advert, read at each publish. */
  sched: () => SchedulerAdvert
  /** Recent steals and pushes this node took part in (the dashboard's Activity), read at each publish. */
  flows?: () => AdvertFlow[]
  /** GPU indexes currently running a task. */
  busyGpus: () => Set<number>
  onPeerUp: (peerId: string, advert: CapacityAdvert) => void
  onAdvert: (peerId: string, advert: CapacityAdvert) => void
  onPeerGone: (peerId: string) => void
  /** Adverts count only from verified members of the mesh (their signer, not the relaying peer). */
  isMember?: (peerId: string) => boolean
  /** Checks the certificate an advert carries for its signer; true once the signer is a verified member. */
  admit?: (peerId: string, cert: Uint8Array) => Promise<boolean>
  /** Our own certificate, carried in every advert. */
  certificate?: () => Uint8Array | undefined
}

export class Adverts {
  readonly table: PeerTable
  private readonly node: GridLibp2p
  private readonly opts: AdvertsOptions
  private readonly topic: string
  // Starts from the clock so a restarted node is not mistaken for a replay of its previous life.
  private seq = Date.now()
  private timer?: NodeJS.Timeout
  private pingTimer?: NodeJS.Timeout
  private rejected = 0
  /** Adverts dropped for coming too soon after the signer's last (rate limit), and adverts that passed. */
  private tooSoon = 0
  private passed = 0
  /** When each signer's last advert passed the rate limit. */
  private readonly passedAt = new Map<string, number>()
  /** Recent advert delays (receive time minus send time) with their arrival times. */
  private delays: Array<{ at: number; ms: number }> = []
  private lastPublishAt = 0
  /** A publish asked for too soon after the last, due at PUBLISH_MIN_GAP_MS after it. */
  private deferred: NodeJS.Timeout | undefined

  constructor(node: GridLibp2p, opts: AdvertsOptions) {
    this.node = node
    this.opts = opts
    this.topic = capacityTopic(opts.mesh)
    this.table = new PeerTable(opts.intervalMs * opts.expiryFactor + 500)
  }

  get rejectedCount(): number {
    return this.rejected
  }

  get tooSoonCount(): number {
    return this.tooSoon
  }

  get passedCount(): number {
    return this.passed
  }

  /**
   * Propagation delay of adverts received in the last 10 s (same-host clocks make this exact on
   * loopback; across machines it includes clock skew).
   */
  delayStats(now = Date.now()): { n: number; p50: number; p99: number } {
    const sorted = this.delays
      .filter((d) => now - d.at <= 10_000)
      .map((d) => d.ms)
      .sort((x, y) => x - y)
    const at = (q: number) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0
    return { n: sorted.length, p50: at(0.5), p99: at(0.99) }
  }

  start(): void {
    const pubsub = this.node.services.pubsub
    pubsub.topicValidators.set(this.topic, (peer, msg) => this.validate(peer, msg))
    pubsub.addEventListener('message', (evt) => {
      const msg = evt.detail
      if (msg.topic !== this.topic || msg.type !== 'signed') return
      this.accept(msg.from.toString(), msg.data)
    })
    pubsub.subscribe(this.topic)
    // Newly subscribed neighbours get our advert right away instead of after a heartbeat.
    pubsub.addEventListener('subscription-change', (evt) => {
      if (evt.detail.subscriptions.some((s) => s.topic === this.topic && s.subscribe)) this.publish()
    })
    this.timer = setInterval(() => this.heartbeat(), this.opts.intervalMs)
    this.pingTimer = setInterval(() => void this.pingAll(), 5000)
    this.publish()
  }

  stop(): void {
    clearInterval(this.timer)
    clearInterval(this.pingTimer)
    clearTimeout(this.deferred)
  }

  /** Publishes the current advert now (the driver calls this when the scheduler asks). */
  publish(): void {
    // Receivers drop a signer's adverts closer than ADVERT_MIN_GAP_MS (check): one asked for
    // sooner after the last (a heartbeat, then a change) goes out a moment later, built then.
    const wait = this.lastPublishAt + PUBLISH_MIN_GAP_MS - Date.now()
    if (wait > 0) {
      this.deferred ??= setTimeout(() => {
        this.deferred = undefined
        this.publish()
      }, wait)
      return
    }
    const advert = this.build()
    this.lastPublishAt = Date.now()
    this.node.services.pubsub.publish(this.topic, encodeAdvert(advert)).catch((err: Error) => {
      this.opts.log.debug({ err: err.message }, 'advert publish failed')
    })
  }

  /** Set once the source of `flows` exists (the daemon builds the dashboard's Activity after the adverts). */
  setFlows(flows: () => AdvertFlow[]): void {
    this.opts.flows = flows
  }

  build(): CapacityAdvert {
    const load = sampleLoad()
    const busy = this.opts.busyGpus()
    const now = Date.now()
    // Sent only while there are some: an idle node's advert stays what older members expect.
    const flows = this.opts.flows?.().slice(0, MAX_ADVERT_FLOWS)
    return {
      v: 1,
      mesh: this.opts.mesh,
      peerId: this.node.peerId.toString(),
      seq: ++this.seq,
      sentAtMs: now,
      version: SOFTWARE_VERSION,
      cpus: this.opts.cores,
      load1: load.load1,
      memoryTotalMB: this.opts.memoryTotalMB,
      memoryFreeMB: load.memoryFreeMB,
      gpus: this.opts.gpus.map((g) => ({ ...g, free: !busy.has(g.index) })),
      sched: this.opts.sched(),
      cert: this.opts.certificate?.(),
      ...(flows !== undefined && flows.length > 0 ? { flows } : {}),
    }
  }

  private heartbeat(): void {
    if (Date.now() - this.lastPublishAt >= this.opts.intervalMs * 0.9) this.publish()
    for (const peer of this.table.expire(Date.now())) {
      this.opts.log.info({ peer }, 'peer expired after missed heartbeats')
      this.opts.onPeerGone(peer)
    }
  }

  private validate(_peer: PeerId, msg: Message): TopicValidatorResult | Promise<TopicValidatorResult> {
    if (msg.type !== 'signed') return this.reject('unsigned')
    const from = msg.from.toString()
    const verdict = this.check(from, msg.data)
    if (verdict !== TopicValidatorResult.Accept || !this.opts.isMember || this.opts.isMember(from))
      return verdict
    // A signer we have not met: its advert must carry a valid certificate (gossip's signature
    // proves it holds the key the certificate names). Otherwise neither deliver nor forward,
    // but don't punish the relay either.
    const cert = decodeAdvertCert(msg.data)
    if (cert === undefined || !this.opts.admit) return TopicValidatorResult.Ignore
    return this.opts.admit(from, cert).then(
      (ok) => (ok ? TopicValidatorResult.Accept : this.reject('signer is not a member', from)),
      () => TopicValidatorResult.Ignore,
    )
  }

  private check(from: string, data: Uint8Array): TopicValidatorResult {
    // At most one advert per signer per ADVERT_MIN_GAP_MS, checked before any decoding (gossip
    // checked the signature already): a node publishes at most every 100 ms, and a member that
    // flooded ~1,900 15-KiB adverts a second kept every node decoding, checking and forwarding
    // them. Dropped, not penalized: a late copy of an honest advert can arrive close to the next.
    const now = Date.now()
    const last = this.passedAt.get(from)
    if (last !== undefined && now - last < ADVERT_MIN_GAP_MS) {
      this.tooSoon++
      return TopicValidatorResult.Ignore
    }
    const result = validateAdvert(data, {
      mesh: this.opts.mesh,
      from,
      now: Date.now(),
      lastSeq: this.table.lastSeq(from),
      maxAgeMs: 60_000,
    })
    // Every advert past the gap counts, replays too: each one was decoded.
    if (this.passedAt.size >= MAX_RATE_ENTRIES && !this.passedAt.has(from)) this.passedAt.clear()
    this.passedAt.set(from, now)
    if (result.ok) {
      this.passed++
      return TopicValidatorResult.Accept
    }
    // Replays of adverts we already have are normal gossip duplicates: ignore rather than penalize.
    if (result.reason === 'replayed') return TopicValidatorResult.Ignore
    return this.reject(result.reason, from)
  }

  private reject(reason: string, from?: string): TopicValidatorResult {
    this.rejected++
    this.opts.log.debug({ reason, from }, 'rejected an advert')
    return TopicValidatorResult.Reject
  }

  private accept(from: string, data: Uint8Array): void {
    const result = validateAdvert(data, { mesh: this.opts.mesh, from, now: Date.now(), maxAgeMs: 60_000 })
    if (!result.ok) return
    const now = Date.now()
    this.delays.push({ at: now, ms: now - result.advert.sentAtMs })
    if (this.delays.length > 4000) this.delays = this.delays.slice(-2000)
    const isNew = this.table.upsert(result.advert, now)
    if (isNew) {
      this.opts.log.info(
        { peer: from, cpus: result.advert.cpus, gpus: result.advert.gpus.length },
        'peer joined',
      )
      this.opts.onPeerUp(from, result.advert)
    }
    this.opts.onAdvert(from, result.advert)
  }

  /** Forgets a peer at once (its connection closed); its next advert brings it back. */
  forget(peerId: string): void {
    if (this.table.delete(peerId)) this.opts.onPeerGone(peerId)
  }

  /**
   * Round-trip times as the connection monitor measured them (it pings every connection every
   * 2 s). No pings of our own: ping allows one outbound stream per connection, so a ping of ours
   * still under way when the monitor's heartbeat came made the monitor's stream fail ("Too many
   * outbound protocol streams"), and the monitor drops a connection whose ping fails: under
   * load (pings slow behind file data) that dropped busy connections.
   */
  private async pingAll(): Promise<void> {
    const conns = this.node.getConnections()
    for (const entry of this.table.list()) {
      const rtt = conns.find((c) => c.remotePeer.toString() === entry.peerId && c.rtt !== undefined)?.rtt
      if (rtt !== undefined && Number.isFinite(rtt)) this.table.setRtt(entry.peerId, rtt)
    }
  }
}

/** Adverts of one signer closer together than this are dropped (see Adverts.check). */
export const ADVERT_MIN_GAP_MS = 25
/** A node's own adverts at least this far apart: twice the gap, for delivery jitter. */
const PUBLISH_MIN_GAP_MS = 2 * ADVERT_MIN_GAP_MS
/** Signers whose last advert time is kept (cleared past it: at worst one extra advert each). */
const MAX_RATE_ENTRIES = 8192

/** The certificate an advert carries, if it decodes at all (validity is the caller's check). */
function decodeAdvertCert(data: Uint8Array): Uint8Array | undefined {
  try {
    return decodeAdvert(data).cert
  } catch {
    return undefined
  }
}
