import { existsSync, mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { BlobStore, RECENT_MS } from '../../src/executor/blob-store.ts'
import { scratchName, scratchRoot, sweepScratch } from '../../src/executor/scratch.ts'
import { JobStore } from '../../src/node/store.ts'
import type { JobSpec } from '../../src/scheduler/types.ts'

const dirs: string[] = []
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gn-disk-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

const bytes = (n: number, fill: number) => new Uint8Array(n).fill(fill)

describe('blob cache quota', () => {
  test('least recently used blobs go first; pinned and recent ones stay', async () => {
    let now = 1_000_000
    const store = await BlobStore.open(dir(), { quota: 3000, now: () => now })
    const a = await store.put(bytes(1000, 1))
    now += 1000
    const b = await store.put(bytes(1000, 2))
    now += 1000
    const c = await store.put(bytes(1000, 3))
    now += RECENT_MS
    await store.get(a) // a is used again: b is now the least recently used
    const unpin = store.pin(c)
    now += RECENT_MS
    const d = await store.put(bytes(1000, 4))
    expect(await store.has(b)).toBe(false)
    expect(await store.has(a)).toBe(true)
    expect(await store.has(c)).toBe(true) // pinned
    expect(await store.has(d)).toBe(true) // just written
    expect(store.size).toBe(3000)
    unpin()
    now += RECENT_MS
    store.quota = 1500
    await store.evict()
    expect(await store.has(c)).toBe(false)
    expect(store.size).toBeLessThanOrEqual(1500)
    expect(store.evicted).toBeGreaterThanOrEqual(2)
  })

  test('sizes what is on disk at open, oldest first by file time', async () => {
    const d = dir()
    const first = await BlobStore.open(d, { quota: 1e9 })
    const old = await first.put(bytes(100, 1))
    const fresh = await first.put(bytes(100, 2))
    const past = (Date.now() - 10 * RECENT_MS) / 1000
    utimesSync(first.pathOf(old), past, past)
    utimesSync(first.pathOf(fresh), past + 60, past + 60)
    const again = await BlobStore.open(d, { quota: 150 })
    expect(again.size).toBe(200)
    await again.evict()
    expect(await again.has(old)).toBe(false)
    expect(await again.has(fresh)).toBe(true)
  })
})

describe('scratch directories', () => {
  test('distinct job ids never share a directory', () => {
    const names = new Set(
      ['a/b', 'a_b', 'a b', 'a:b'].map((job) => scratchName({ job, index: 0, attempt: 1 })),
    )
    expect(names.size).toBe(4)
    expect(scratchName({ job: 'x', index: 1, attempt: 2 })).toMatch(/^x-[0-9a-f]{16}-1-2$/)
  })

  test('swept at start', async () => {
    const d = dir()
    mkdirSync(join(scratchRoot(d), 'left-over-0-1', 'deep'), { recursive: true })
    writeFileSync(join(scratchRoot(d), 'left-over-0-1', 'deep', 'f'), 'x')
    expect(await sweepScratch(d)).toBe(1)
    expect(existsSync(join(scratchRoot(d), 'left-over-0-1'))).toBe(false)
    expect(existsSync(scratchRoot(d))).toBe(true)
    expect(await sweepScratch(dir())).toBe(0)
  })
})

describe('job retention', () => {
  test('prunes finished jobs older than the cut-off, never running ones', () => {
    const store = new JobStore(join(dir(), 'jobs.db'))
    const spec = (id: string): JobSpec => ({
      id,
      owner: 'o',
      work: { kind: 'noop' },
      resources: { cpu: 1, gpu: 0, memoryMB: 0 },
      timeoutMs: 0,
      maxAttempts: 3,
      retries: 0,
    })
    const tasks = [{ index: 0, input: new Uint8Array([1]), deps: [] }]
    store.createJob(spec('old'), 'old', tasks, 1000)
    store.finishJob('old', 'done', 2000)
    store.createJob(spec('new'), 'new', tasks, 1000)
    store.finishJob('new', 'done', 9000)
    store.createJob(spec('run'), 'run', tasks, 1000)
    store.saveResults([
      {
        job: 'old',
        index: 0,
        attempt: 1,
        ranOn: 'o',
        outcome: { status: 'ok', value: new Uint8Array(), durationMs: 1 },
      },
    ])
    expect(store.pruneJobs(5000)).toEqual(['old'])
    expect(store.job('old')).toBeUndefined()
    expect(store.results('old')).toEqual([])
    expect(store.tasks('old')).toEqual([])
    expect(
      store
        .jobs()
        .map((j) => j.id)
        .sort(),
    ).toEqual(['new', 'run'])
    expect(store.pruneJobs(Number.MAX_SAFE_INTEGER)).toEqual(['new'])
    store.close()
  })
})
