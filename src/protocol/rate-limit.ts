/**
 * Per-peer limits on inbound requests: a token bucket per (peer, request
 * kind), and counters of what was limited, dropped or closed, for status.
 * Pure and clock-injected, so tests drive time by hand.
 *
 * Kinds are request message types: `steal`, `push` (steal protocol),
 * `lease`, `cancel` (lease protocol), `results` (result protocol) and
 * `blob-get` (blob protocol).
 */

/** Sustained requests per second and the burst allowed above it. */
export interface RateSpec {
  perSecond: number
  burst: number
}

/** Per kind; `null` turns a kind's limit off. Kinds not listed are not limited. */
export type RateLimits = Record<string, RateSpec | null>

/**
 * Generous: a 4-node mesh running 20k tasks/s sends far fewer messages than
 * this, since leases and results are batched and idle steals back off.
 */
export const DEFAULT_RATE_LIMITS: Readonly<Record<string, RateSpec>> = Object.freeze({
  steal: { perSecond: 200, burst: 400 },
  push: { perSecond: 100, burst: 200 },
  lease: { perSecond: 100, burst: 200 },
  cancel: { perSecond: 100, burst: 200 },
  results: { perSecond: 500, burst: 1000 },
  'blob-get': { perSecond: 50, burst: 100 },
})

/** Blob fetches one peer may have in progress at once. */
export const DEFAULT_BLOB_CONCURRENCY_PER_PEER = 8
/** Limited requests within one second on one stream after which the stream is closed. */
export const DEFAULT_FLOOD_CLOSE_AFTER = 200
/** A long-lived request stream with no frame for this long is closed. */
export const DEFAULT_IDLE_TIMEOUT_MS = 60_000
/** A blob stream must bring its request within this long. */
export const DEFAULT_BLOB_REQUEST_TIMEOUT_MS = 10_000

export type Clock = () => number

/** A token bucket; `now` in milliseconds. */
export class TokenBucket {
  private tokens: number
  private at: number
  private readonly spec: RateSpec

  constructor(spec: RateSpec, now: number) {
    this.spec = spec
    this.tokens = spec.burst
    this.at = now
  }

  private refill(now: number): void {
    if (now > this.at) {
      this.tokens = Math.min(this.spec.burst, this.tokens + ((now - this.at) * this.spec.perSecond) / 1000)
      this.at = now
    }
  }

  /** Takes one token if there is one. */
  take(now: number): boolean {
    this.refill(now)
    if (this.tokens < 1) return false
    this.tokens -= 1
    return true
  }

  /** True once the bucket would be full again (nothing to remember). */
  full(now: number): boolean {
    this.refill(now)
    return this.tokens >= this.spec.burst
  }
}

/** Buckets beyond this many get swept of the full ones (peers that went quiet). */
const SWEEP_ABOVE = 1024

/** Token buckets per (peer, kind). One limiter can serve every protocol. */
export class RateLimiter {
  private readonly limits: RateLimits
  private readonly clock: Clock
  private readonly buckets = new Map<string, TokenBucket>()

  constructor(limits: Partial<RateLimits> = {}, clock: Clock = () => performance.now()) {
    this.limits = { ...DEFAULT_RATE_LIMITS, ...limits } as RateLimits
    this.clock = clock
  }

  /** Whether `peer` may make one more request of `kind` now (and counts it if so). */
  take(peer: string, kind: string): boolean {
    const spec = this.limits[kind]
    if (spec === undefined || spec === null) return true
    const key = `${kind} ${peer}`
    const now = this.clock()
    let bucket = this.buckets.get(key)
    if (bucket === undefined) {
      if (this.buckets.size >= SWEEP_ABOVE) this.sweep(now)
      bucket = new TokenBucket(spec, now)
      this.buckets.set(key, bucket)
    }
    return bucket.take(now)
  }

  /** Buckets held (for tests). */
  get size(): number {
    return this.buckets.size
  }

  private sweep(now: number): void {
    for (const [key, bucket] of this.buckets) if (bucket.full(now)) this.buckets.delete(key)
  }
}

/** Milliseconds of this node's event loop one peer's requests may take per second, and the burst above it. */
export interface CostSpec {
  msPerSecond: number
  burstMs: number
}

/**
 * Half the event loop per peer, sustained, and two seconds of it at once. Honest traffic at full
 * speed comes near a quarter: on 4 daemons x 1 slot running no-ops (2-core VM, ~11k tasks/s) the
 * busiest second cost a thief 320 ms of its owner's pushes, and the owner 240 ms of one thief's
 * results (decoding them and the scheduler's work on them). A hostile member's worst messages cost
 * ~50 ms per MiB to decode (4 MiB leases of 16-link custody chains naming 65,000 distinct peer IDs).
 */
export const DEFAULT_COST_BUDGET: Readonly<CostSpec> = Object.freeze({ msPerSecond: 500, burstMs: 2000 })

/**
 * What each peer's requests cost this node's event loop: a bucket of milliseconds per peer,
 * charged with the measured time of decoding each request and of its handler's synchronous part
 * (the scheduler's work on it, custody signature checks), refilled at `msPerSecond` up to
 * `burstMs`. A charge may take a bucket into debt (a request's cost is known only once it is
 * paid); while it is in debt, the peer's streams are paused and nothing of it is decoded
 * (serve.ts waits `waitMs`), so past the window it was already granted its bytes wait on its side,
 * and an honest peer over the budget is only answered later, never refused. Not charged: the
 * transport's decryption, and a handler's work after its first await. Per-kind rate limits
 * (RateLimiter) count requests; this counts what they cost, whatever they carry.
 */
export class CostBudget {
  private readonly spec: CostSpec
  private readonly clock: Clock
  private readonly buckets = new Map<string, { ms: number; at: number }>()

  constructor(spec: Partial<CostSpec> = {}, clock: Clock = () => performance.now()) {
    this.spec = { ...DEFAULT_COST_BUDGET, ...spec }
    this.clock = clock
  }

  private bucket(peer: string): { ms: number; at: number } {
    const now = this.clock()
    let b = this.buckets.get(peer)
    if (b === undefined) {
      if (this.buckets.size >= SWEEP_ABOVE) this.sweep(now)
      b = { ms: this.spec.burstMs, at: now }
      this.buckets.set(peer, b)
    } else if (now > b.at) {
      b.ms = Math.min(this.spec.burstMs, b.ms + ((now - b.at) * this.spec.msPerSecond) / 1000)
      b.at = now
    }
    return b
  }

  /** How long (ms) `peer` must wait before its next request is read: 0 unless its bucket is in debt. */
  waitMs(peer: string): number {
    const b = this.bucket(peer)
    return b.ms > 0 ? 0 : Math.ceil(((1 - b.ms) * 1000) / this.spec.msPerSecond)
  }

  /** Charges `ms` of event-loop time to `peer`. */
  charge(peer: string, ms: number): void {
    if (!(ms > 0)) return
    this.bucket(peer).ms -= ms
  }

  /** Milliseconds `peer` has left (negative: in debt); for tests and status. */
  left(peer: string): number {
    return this.bucket(peer).ms
  }

  /** Buckets held (for tests). */
  get size(): number {
    return this.buckets.size
  }

  private sweep(now: number): void {
    for (const [peer, b] of this.buckets) {
      const ms = b.ms + ((now - b.at) * this.spec.msPerSecond) / 1000
      if (ms >= this.spec.burstMs) this.buckets.delete(peer)
    }
  }
}

/** One `T` per registrar (a libp2p node), made on first use: what its servers share. */
function perRegistrar<T>(make: () => T): (registrar: object) => T {
  const made = new WeakMap<object, T>()
  return (registrar) => {
    let value = made.get(registrar)
    if (value === undefined) {
      value = make()
      made.set(registrar, value)
    }
    return value
  }
}

/** The cost budget every server registered on `registrar` (a libp2p node) shares unless given its own. */
export const costBudgetOf = perRegistrar(() => new CostBudget())

/** What happened to one kind of inbound request. */
export interface KindCounters {
  /** Requests received (admitted or not). */
  received: number
  /** Refused with GN_RATE_LIMITED. */
  limited: number
  /** Admitted, but the handler failed: the message was dropped and an error reply sent. */
  failed: number
}

export interface InboundStatsSnapshot {
  byKind: Record<string, KindCounters>
  /** Times a stream was held back because its peer had spent its cost budget, and the ms held in all. */
  overBudget: { waits: number; waitedMs: number }
  /** Inbound streams we closed, by reason. */
  streamsClosed: { idle: number; flood: number; malformed: number; timeout: number; broken: number }
}

/**
 * Counters of inbound protocol traffic, shared by every server a node
 * registers (pass the same object as `stats` to each). `snapshot()` is plain
 * JSON for status.
 */
export class InboundStats {
  private readonly kinds = new Map<string, KindCounters>()
  readonly streamsClosed: InboundStatsSnapshot['streamsClosed'] = {
    idle: 0,
    flood: 0,
    malformed: 0,
    timeout: 0,
    broken: 0,
  }

  kind(kind: string): KindCounters {
    let c = this.kinds.get(kind)
    if (c === undefined) {
      c = { received: 0, limited: 0, failed: 0 }
      this.kinds.set(kind, c)
    }
    return c
  }

  readonly overBudget = { waits: 0, waitedMs: 0 }

  snapshot(): InboundStatsSnapshot {
    const byKind: Record<string, KindCounters> = {}
    for (const [k, c] of this.kinds) byKind[k] = { ...c }
    return { byKind, overBudget: { ...this.overBudget }, streamsClosed: { ...this.streamsClosed } }
  }
}

/**
 * The counters every server registered on `registrar` (a libp2p node)
 * updates unless given its own `stats`: read them here for status.
 */
export const inboundStatsOf = perRegistrar(() => new InboundStats())

/** Counts events in a sliding one-second window (for flood detection on one stream). */
export class WindowCounter {
  private readonly times: number[] = []
  private readonly clock: Clock

  constructor(clock: Clock) {
    this.clock = clock
  }

  /** Records one event; returns how many fell within the last second. */
  hit(): number {
    const now = this.clock()
    this.times.push(now)
    while (this.times.length > 0 && this.times[0] <= now - 1000) this.times.shift()
    return this.times.length
  }
}
