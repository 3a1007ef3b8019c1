import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { DatabaseSync } from 'node:sqlite'
import { afterEach, describe, expect, it } from 'vitest'
import { type JobEvent, JobHub } from '../../src/node/job-hub.ts'
import { JobStore } from '../../src/node/store.ts'
import type { JobSpec, TaskResult } from '../../src/scheduler/types.ts'

const spec: JobSpec = {
  id: 'job-1',
  owner: 'peer-a',
  work: { kind: 'noop' },
  resources: { cpu: 1, gpu: 0, memoryMB: 0 },
  timeoutMs: 0,
  maxAttempts: 3,
  retries: 0,
}
const progress = { job: 'job-1', total: 6, done: 6, failed: 0, running: 0, nodes: 1 }

function result(index: number, value = new Uint8Array([index])): TaskResult {
  return { job: 'job-1', index, attempt: 1, ranOn: 'b', outcome: { status: 'ok', value, durationMs: 1 } }
}

const stores: JobStore[] = []
afterEach(() => {
  for (const s of stores.splice(0)) s.close()
})

function openStore(): JobStore {
  const store = new JobStore(join(mkdtempSync(join(tmpdir(), 'gridnode-hub-')), 'jobs.db'))
  stores.push(store)
  store.createJob(
    spec,
    'six',
    Array.from({ length: 6 }, (_, i) => ({ index: i, input: new Uint8Array([i]), deps: [] })),
    1000,
  )
  return store
}

/** Makes the store's writes throw `failures` times (as SQLite does on a full disk), then work again. */
function failWrites(store: JobStore, failures: number): { attempts: () => number } {
  const real = store.saveBatch.bind(store)
  let attempts = 0
  store.saveBatch = (results, finished) => {
    attempts++
    if (attempts <= failures) {
      throw Object.assign(new Error('database or disk is full'), { code: 'ERR_SQLITE_ERROR', errcode: 13 })
    }
    real(results, finished)
  }
  return { attempts: () => attempts }
}

const settle = (p: Promise<unknown>) =>
  p.then(
    () => 'ok',
    (err: { code?: string }) => err.code,
  )

describe('JobHub: a result is acknowledged only once it is written', () => {
  it('rejects flushed() while writes fail, keeps the results queued, and writes each exactly once later', async () => {
    const store = openStore()
    const hub = new JobHub(store, { retryMinMs: 5, retryMaxMs: 20 })
    const writes = failWrites(store, 3)
    const events: JobEvent[] = []
    hub.subscribe('job-1', (e) => events.push(e))

    const first = hub.persist([result(0), result(1)])
    expect(await settle(hub.flushed())).toBe('GN_STORAGE')
    expect(await settle(first)).toBe('GN_STORAGE')
    expect(hub.storage()).toMatchObject({
      ok: false,
      error: 'database or disk is full',
      failures: 1,
      pendingResults: 2,
    })
    expect(store.results('job-1')).toEqual([])
    expect(events).toEqual([])

    // More results (and a duplicate of one) while the disk is full: they join the retry.
    const second = hub.persist([result(2), result(1)])
    hub.finish('job-1', 'done', progress)
    // Every flush that fails rejects its waiters: nothing may be acknowledged.
    const outcomes: string[] = []
    while (true) {
      const outcome = await settle(hub.flushed())
      outcomes.push(String(outcome))
      if (outcome === 'ok') break
    }
    expect(outcomes.slice(0, -1).every((o) => o === 'GN_STORAGE')).toBe(true)
    expect(await settle(second)).toBe('GN_STORAGE')
    expect(writes.attempts()).toBe(4)

    expect(hub.storage()).toEqual({ ok: true, pendingResults: 0 })
    expect(store.results('job-1').map((r) => r.index)).toEqual([0, 1, 2])
    expect(store.job('job-1')?.status).toBe('done')
    const announced = events.flatMap((e) => (e.type === 'results' ? e.results.map((r) => r.index) : []))
    expect(announced.sort()).toEqual([0, 1, 1, 2])
    expect(events.at(-1)?.type).toBe('finished')
  })

  it('survives a real SQLITE_FULL (max_page_count) and writes everything once space returns', async () => {
    const store = openStore()
    const hub = new JobHub(store, { retryMinMs: 5, retryMaxMs: 20 })
    const db = (store as unknown as { db: DatabaseSync }).db
    const { page_count } = db.prepare('PRAGMA page_count').get() as { page_count: number }
    db.exec(`PRAGMA max_page_count = ${page_count}`)
    const big = new Uint8Array(256 * 1024).fill(7)
    const ack = hub.persist([result(0, big), result(1, big), result(2)])
    expect(await settle(ack)).toBe('GN_STORAGE')
    const health = hub.storage()
    expect(health.ok).toBe(false)
    expect(health.error).toMatch(/full/)
    expect(typeof health.since).toBe('number')
    expect(store.results('job-1')).toEqual([])

    db.exec('PRAGMA max_page_count = 1073741823') // space returns
    while ((await settle(hub.flushed())) !== 'ok') {}
    expect(store.results('job-1').map((r) => [r.index, r.value?.byteLength])).toEqual([
      [0, big.byteLength],
      [1, big.byteLength],
      [2, 1],
    ])
    expect(hub.storage().ok).toBe(true)
  })

  it('a failed flush that nobody awaits is not an unhandled rejection, and a closed store stops the retries', async () => {
    const store = openStore()
    const hub = new JobHub(store, { retryMinMs: 5, retryMaxMs: 5 })
    failWrites(store, 1_000_000)
    hub.finish('job-1', 'done', progress)
    await new Promise((r) => setTimeout(r, 30))
    store.close()
    await new Promise((r) => setTimeout(r, 30))
    const health = hub.storage()
    expect(health.ok).toBe(false)
    const attempts = health.failures
    await new Promise((r) => setTimeout(r, 30))
    expect(hub.storage().failures).toBe(attempts)
  })

  it('a subscriber that throws does not stop the others or the store', async () => {
    const store = openStore()
    const hub = new JobHub(store)
    const errors: unknown[] = []
    hub.onListenerError = (err) => errors.push(err)
    const seen: string[] = []
    hub.subscribe('job-1', () => {
      throw new Error('subscriber bug')
    })
    hub.subscribe('job-1', (e) => seen.push(e.type))
    await hub.persist([result(0)])
    hub.setBlocked('job-1', 'no GPU')
    expect(seen).toEqual(['results', 'blocked'])
    expect(errors).toHaveLength(2)
  })
})
