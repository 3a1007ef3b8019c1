import { createHash } from 'node:crypto'
import { streamPair } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import {
  BLOB_FETCH_MAX_BYTES,
  BLOB_MAX_BYTES,
  BLOB_PROTOCOL,
  blobReplyCodec,
  blobRequestCodec,
} from '../../src/protocol/blob/codec.ts'
import { fetchBlob, registerBlobProtocol, Semaphore } from '../../src/protocol/blob/handler.ts'
import { BlobTooLargeError, type RemoteRequestError } from '../../src/protocol/errors.ts'
import { setValidateOutgoing } from '../../src/protocol/message.ts'
import {
  CostBudget,
  DEFAULT_RATE_LIMITS,
  InboundStats,
  RateLimiter,
  TokenBucket,
} from '../../src/protocol/rate-limit.ts'
import { STEAL_PROTOCOL, stealRequestCodec } from '../../src/protocol/steal/codec.ts'
import { registerStealProtocol, StealClient } from '../../src/protocol/steal/handler.ts'
import { framed, type OpenStream } from '../../src/protocol/stream.ts'
import { FakeRegistrar, frame, until, whenClosed } from './fakes.ts'
import { bytesOf, PEER_A, PEER_B } from './fixtures.ts'

const FREE = { cpu: 4, gpu: 0, memoryMB: 8192 }
const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

function codeOf(err: unknown): string | undefined {
  return (err as RemoteRequestError).remoteCode ?? (err as { code?: string }).code
}

describe('token buckets', () => {
  it('allow a burst, then the sustained rate, per (peer, kind)', () => {
    let now = 0
    const limiter = new RateLimiter({ steal: { perSecond: 10, burst: 5 } }, () => now)
    const takes = (peer: string, kind: string, n: number) =>
      Array.from({ length: n }, () => limiter.take(peer, kind)).filter(Boolean).length
    expect(takes(PEER_A, 'steal', 8)).toBe(5)
    expect(takes(PEER_B, 'steal', 8)).toBe(5) // another peer has its own bucket
    now += 100 // one token back
    expect(takes(PEER_A, 'steal', 3)).toBe(1)
    now += 10_000 // refills to the burst, not beyond
    expect(takes(PEER_A, 'steal', 10)).toBe(5)
    // Default kinds are limited too; unknown kinds are not.
    expect(takes(PEER_A, 'push', 1000)).toBe(DEFAULT_RATE_LIMITS.push.burst)
    expect(takes(PEER_A, 'no-such-kind', 1000)).toBe(1000)
  })

  it('can turn a kind off, and forgets quiet peers', () => {
    let now = 0
    const limiter = new RateLimiter({ steal: null }, () => now)
    for (let i = 0; i < 10_000; i++) expect(limiter.take(PEER_A, 'steal')).toBe(true)
    for (let i = 0; i < 3000; i++) limiter.take(`peer-${i}`, 'lease')
    expect(limiter.size).toBeLessThanOrEqual(3000)
    now += 60_000
    limiter.take('late', 'lease')
    expect(limiter.size).toBeLessThan(1100)
  })

  it('a bucket refills at its rate', () => {
    const b = new TokenBucket({ perSecond: 1000, burst: 1 }, 0)
    expect(b.take(0)).toBe(true)
    expect(b.take(0.5)).toBe(false)
    expect(b.take(1)).toBe(true)
  })
})

async function stealServer(options: Parameters<typeof registerStealProtocol>[2]) {
  const registrar = new FakeRegistrar()
  const errors: Error[] = []
  let steals = 0
  await registerStealProtocol(
    registrar,
    {
      async onStealRequest() {
        steals++
        return { batch: { jobs: [], tasks: [] } }
      },
      async onPush() {
        return { accepted: 0 }
      },
    },
    { timeoutMs: 1000, onError: (_peer, err) => errors.push(err), ...options },
  )
  return { registrar, errors, steals: () => steals }
}

describe('cost budgets', () => {
  it('let a peer run into debt once, then make it wait until the debt is paid back', () => {
    let now = 0
    const budget = new CostBudget({ msPerSecond: 100, burstMs: 200 }, () => now)
    expect(budget.waitMs(PEER_A)).toBe(0)
    budget.charge(PEER_A, 150)
    expect(budget.waitMs(PEER_A)).toBe(0) // 50 ms left: the next request may start
    budget.charge(PEER_A, 250) // a request costs what it costs: 200 ms in debt
    expect(budget.left(PEER_A)).toBe(-200)
    // Back above zero after 2 s at 100 ms a second (and 10 ms for the first millisecond of credit).
    expect(budget.waitMs(PEER_A)).toBe(2010)
    expect(budget.waitMs(PEER_B)).toBe(0) // another peer has its own
    now += 1000
    expect(budget.waitMs(PEER_A)).toBe(1010)
    now += 1010
    expect(budget.waitMs(PEER_A)).toBe(0)
    now += 60_000 // refills to the burst, not beyond
    expect(budget.left(PEER_A)).toBe(200)
    budget.charge(PEER_A, -5) // nonsense charges are ignored
    budget.charge(PEER_A, Number.NaN)
    expect(budget.left(PEER_A)).toBe(200)
  })

  it('forget peers whose buckets are full once many are held', () => {
    let now = 0
    const budget = new CostBudget({ msPerSecond: 1000, burstMs: 10 }, () => now)
    for (let i = 0; i < 1024; i++) budget.charge(`peer-${i}`, 5)
    expect(budget.size).toBe(1024)
    now += 1000
    budget.charge('one-more', 1)
    expect(budget.size).toBe(1)
  })
})

describe('rate limits on the request/response servers', () => {
  it('answers requests over the limit with GN_RATE_LIMITED and counts them; the handler never sees them', async () => {
    const now = 0
    const stats = new InboundStats()
    const s = await stealServer({
      rateLimits: { steal: { perSecond: 1, burst: 3 } },
      clock: () => now,
      stats,
      floodCloseAfter: 0,
    })
    const thief = new StealClient(s.registrar.opener(STEAL_PROTOCOL, PEER_B))
    const outcomes = await Promise.allSettled(
      Array.from({ length: 10 }, () => thief.steal({ free: FREE, max: 1 })),
    )
    expect(outcomes.filter((o) => o.status === 'fulfilled')).toHaveLength(3)
    for (const o of outcomes.filter((o) => o.status === 'rejected')) {
      expect(codeOf((o as PromiseRejectedResult).reason)).toBe('GN_RATE_LIMITED')
    }
    expect(s.steals()).toBe(3)
    expect(stats.snapshot().byKind.steal).toEqual({ received: 10, limited: 7, failed: 0 })
    // Pushes have their own bucket.
    expect(await thief.push({ batch: { jobs: [], tasks: [] } })).toEqual({ accepted: 0 })
    // Limited replies do not break the stream: one stream served all of it.
    expect(s.registrar.opened).toBe(1)
    expect(s.errors).toEqual([])
    thief.close()
  })

  it('holds back the streams of a peer in debt with its cost budget, and answers it later; others go on', async () => {
    const stats = new InboundStats()
    const cost = new CostBudget({ msPerSecond: 1000, burstMs: 10 })
    const s = await stealServer({ stats, cost })
    cost.charge(PEER_B, 60) // 50 ms in debt: its next request waits ~51 ms
    const order: string[] = []
    const b = new StealClient(s.registrar.opener(STEAL_PROTOCOL, PEER_B))
    const a = new StealClient(s.registrar.opener(STEAL_PROTOCOL, PEER_A))
    const started = performance.now()
    await Promise.all([
      b.steal({ free: FREE, max: 1 }).then(() => order.push('b')),
      a.steal({ free: FREE, max: 1 }).then(() => order.push('a')),
    ])
    expect(performance.now() - started).toBeGreaterThanOrEqual(45)
    expect(order).toEqual(['a', 'b'])
    expect(s.steals()).toBe(2)
    expect(stats.snapshot().overBudget.waits).toBe(1)
    expect(stats.snapshot().byKind.steal.limited).toBe(0) // slowed, never refused
    a.close()
    b.close()
  })

  it('closes a stream that keeps flooding', async () => {
    const stats = new InboundStats()
    const s = await stealServer({
      rateLimits: { steal: { perSecond: 1, burst: 1 } },
      stats,
      floodCloseAfter: 20,
    })
    const served = await s.registrar.connect(STEAL_PROTOCOL, PEER_B)
    const io = framed(served.outbound, 1 << 20)
    const req = stealRequestCodec.encode({ t: 'steal', free: FREE, max: 1 })
    for (let i = 0; i < 100; i++) served.outbound.send(frame(req))
    await served.done
    await whenClosed(served.inbound)
    expect(stats.streamsClosed.flood).toBe(1)
    expect(s.errors.at(-1)?.message).toMatch(/over the rate limit within a second; stream closed/)
    expect(s.steals()).toBe(1)
    void io
  })

  it('closes an idle inbound stream after the idle timeout, and a slow frame after timeoutMs', async () => {
    const stats = new InboundStats()
    const s = await stealServer({ idleTimeoutMs: 50, stats })
    const idle = await s.registrar.connect(STEAL_PROTOCOL, PEER_B)
    await idle.done
    expect(idle.inbound.status).not.toBe('open')
    expect(stats.streamsClosed.idle).toBe(1)
    expect(s.errors[0].message).toMatch(/idle for 50 ms/)

    // A request, then silence: served, then closed as idle.
    const thief = new StealClient(s.registrar.opener(STEAL_PROTOCOL, PEER_A), { idleCloseMs: 0 })
    expect(await thief.steal({ free: FREE, max: 1 })).toEqual({ batch: { jobs: [], tasks: [] } })
    await until(() => stats.streamsClosed.idle === 2, 2000)
    thief.close()
  })

  it('counts a handler failure as a dropped message and keeps serving', async () => {
    const registrar = new FakeRegistrar()
    const stats = new InboundStats()
    let calls = 0
    await registerStealProtocol(
      registrar,
      {
        async onStealRequest() {
          calls++
          if (calls === 1) throw new Error('boom')
          return { batch: { jobs: [], tasks: [] } }
        },
        async onPush() {
          return { accepted: 0 }
        },
      },
      { stats },
    )
    const thief = new StealClient(registrar.opener(STEAL_PROTOCOL, PEER_B))
    await expect(thief.steal({ free: FREE, max: 1 })).rejects.toThrow(/boom/)
    expect(await thief.steal({ free: FREE, max: 1 })).toEqual({ batch: { jobs: [], tasks: [] } })
    expect(stats.snapshot().byKind.steal).toEqual({ received: 2, limited: 0, failed: 1 })
    thief.close()
  })
})

describe('blob server limits', () => {
  async function server(options: Parameters<typeof registerBlobProtocol>[2], hold?: Promise<void>) {
    const registrar = new FakeRegistrar()
    const data = bytesOf(100)
    const stats = new InboundStats()
    await registerBlobProtocol(
      registrar,
      {
        async getBlob() {
          await hold
          return data
        },
      },
      { stats, timeoutMs: 2000, ...options },
    )
    return { registrar, data, stats, open: registrar.opener(BLOB_PROTOCOL, PEER_B) }
  }

  it('refuses fetches over the rate limit with GN_RATE_LIMITED', async () => {
    const s = await server({ rateLimits: { 'blob-get': { perSecond: 0.001, burst: 2 } } })
    const hash = sha256(s.data)
    expect(await fetchBlob(s.open, hash)).toEqual(s.data)
    expect(await fetchBlob(s.open, hash)).toEqual(s.data)
    const err = await fetchBlob(s.open, hash).catch((e: unknown) => e)
    expect(codeOf(err)).toBe('GN_RATE_LIMITED')
    expect(s.stats.snapshot().byKind['blob-get']).toMatchObject({ received: 3, limited: 1 })
  })

  it('allows a bounded number of fetches in progress per peer', async () => {
    const gate = Promise.withResolvers<void>()
    const s = await server({ maxConcurrentPerPeer: 2 }, gate.promise)
    const hash = sha256(s.data)
    const slots = new Semaphore(10)
    const first = [fetchBlob(s.open, hash, { slots }), fetchBlob(s.open, hash, { slots })]
    await until(() => s.stats.snapshot().byKind['blob-get']?.received === 2)
    const third = await fetchBlob(s.open, hash, { slots }).catch((e: unknown) => e)
    expect(codeOf(third)).toBe('GN_RATE_LIMITED')
    gate.resolve()
    expect(await Promise.all(first)).toEqual([s.data, s.data])
    // Finished fetches give their places back.
    expect(await fetchBlob(s.open, hash, { slots })).toEqual(s.data)
  })

  it('closes a blob stream whose request does not come within requestTimeoutMs', async () => {
    const s = await server({ requestTimeoutMs: 50 })
    const served = await s.registrar.connect(BLOB_PROTOCOL, PEER_B)
    await served.done
    expect(served.inbound.status).not.toBe('open')
    expect(s.stats.streamsClosed.timeout).toBe(1)
  })
})

/** A server that answers any blob-get with `header`, then sends nothing until the client leaves. */
function announcingServer(header: Uint8Array): OpenStream {
  return async () => {
    const [outbound, inbound] = await streamPair({ delay: 0 })
    const io = framed(inbound, 2 * 1024 * 1024)
    void (async () => {
      blobRequestCodec.decode((await io.read())!)
      inbound.send(frame(header))
    })().catch(() => {})
    return outbound
  }
}

describe('fetchBlob bounds', () => {
  it('does not allocate what a header claims before the data arrives', async () => {
    const header = blobReplyCodec.encode({ t: 'blob-header', found: true, size: BLOB_FETCH_MAX_BYTES })
    const before = process.memoryUsage().arrayBuffers
    const err = await fetchBlob(announcingServer(header), 'a'.repeat(64), { timeoutMs: 200 }).catch(
      (e: unknown) => e,
    )
    const grown = process.memoryUsage().arrayBuffers - before
    expect((err as Error).message).toMatch(/no progress/)
    expect(grown).toBeLessThan(16 * 1024 * 1024)
  })

  it('refuses a 256 MiB header by default, before any allocation', async () => {
    const header = blobReplyCodec.encode({ t: 'blob-header', found: true, size: BLOB_MAX_BYTES })
    const before = process.memoryUsage().arrayBuffers
    const err = await fetchBlob(announcingServer(header), 'a'.repeat(64)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(BlobTooLargeError)
    expect((err as Error).message).toMatch(/268435456 bytes \(max 67108864\)/)
    expect(process.memoryUsage().arrayBuffers - before).toBeLessThan(16 * 1024 * 1024)
  })

  it('refuses an oversized header at once: over maxBytes, and 2^53', async () => {
    const big = blobReplyCodec.encode({ t: 'blob-header', found: true, size: 64 * 1024 * 1024 })
    const start = performance.now()
    const err = await fetchBlob(announcingServer(big), 'a'.repeat(64), { maxBytes: 1024 * 1024 }).catch(
      (e: unknown) => e,
    )
    expect(err).toBeInstanceOf(BlobTooLargeError)
    expect(performance.now() - start).toBeLessThan(1000)

    setValidateOutgoing(false)
    let huge: Uint8Array
    try {
      huge = blobReplyCodec.encode({ t: 'blob-header', found: true, size: 2 ** 53 })
    } finally {
      setValidateOutgoing(true)
    }
    const err2 = await fetchBlob(announcingServer(huge), 'a'.repeat(64)).catch((e: unknown) => e)
    expect((err2 as { code?: string }).code).toBe('GN_REMOTE_PROTOCOL')
  })

  it('runs at most `slots` fetches at once; the others wait, and a waiting fetch can be aborted', async () => {
    const slots = new Semaphore(1)
    const gate = Promise.withResolvers<void>()
    const registrar = new FakeRegistrar()
    const data = bytesOf(10)
    let serving = 0
    let most = 0
    await registerBlobProtocol(registrar, {
      async getBlob() {
        serving++
        most = Math.max(most, serving)
        await gate.promise
        serving--
        return data
      },
    })
    const open = registrar.opener(BLOB_PROTOCOL, PEER_B)
    const fetches = [1, 2, 3].map(() => fetchBlob(open, sha256(data), { slots }))
    const aborted = new AbortController()
    const gaveUp = fetchBlob(open, sha256(data), { slots, signal: aborted.signal }).catch((e: unknown) => e)
    await until(() => serving === 1)
    expect(slots.waiting).toBe(3)
    aborted.abort(new Error('gave up'))
    expect(((await gaveUp) as Error).message).toBe('gave up')
    expect(slots.waiting).toBe(2)
    gate.resolve()
    expect(await Promise.all(fetches)).toEqual([data, data, data])
    expect(most).toBe(1)
    expect(slots.available).toBe(1)
  })
})
