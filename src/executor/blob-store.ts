/**
 * Content-addressed bytes in `<dataDir>/blobs`, one file per blob named
 * `<sha256 hex>.mjs` (the extension lets a bundle be imported straight from
 * its file; other blobs do not care). Writes are atomic (temporary file,
 * fsync, rename), so a reader sees a whole blob or none.
 *
 * A size quota (default 10 GiB) keeps the cache bounded: after a write takes
 * it over the quota, the least recently used blobs are removed until it fits
 * again, except blobs in use (pinned: a running task's bundle, an active
 * job's bundle on its owner) and blobs written or used in the last
 * RECENT_MS (a bundle just uploaded, about to be pinned by its submit).
 */
import { createHash, randomBytes } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { chmod, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BadHashError, BlobHashMismatchError } from './errors.ts'

const HASH = /^[0-9a-f]{64}$/
const TMP_PREFIX = '.tmp-'
/** Files being fetched piece by piece (`.part-<hash>` and its `.done` list): kept across restarts to resume. */
export const PART_PREFIX = '.part-'
export const DEFAULT_BLOB_QUOTA = 10 * 1024 ** 3
/** Blobs used this recently are never evicted. */
export const RECENT_MS = 60_000

export function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex')
}

export function isBlobHash(s: unknown): s is string {
  return typeof s === 'string' && HASH.test(s)
}

export function assertBlobHash(s: unknown): asserts s is string {
  if (!isBlobHash(s))
    throw new BadHashError(`not a sha256 hex digest: ${JSON.stringify(String(s)).slice(0, 80)}`)
}

interface Entry {
  size: number
  usedAt: number
}

export interface BlobStoreOptions {
  /** Bytes; default DEFAULT_BLOB_QUOTA. */
  quota?: number
  /** Clock (tests). */
  now?: () => number
}

export class BlobStore {
  readonly dir: string
  quota: number
  /** Blobs evicted since open. */
  evicted = 0
  private readonly entries = new Map<string, Entry>()
  private readonly pins = new Map<string, number>()
  private readonly urls = new Map<string, string>()
  /** Blobs the owner keeps for as long as its job store refers to them (outputs of jobs). */
  keep: (hash: string) => boolean = () => false
  private total = 0
  private readonly now: () => number

  private constructor(dir: string, opts: BlobStoreOptions) {
    this.dir = dir
    this.quota = opts.quota ?? DEFAULT_BLOB_QUOTA
    this.now = opts.now ?? Date.now
  }

  /** Opens (creating) `<dataDir>/blobs`, clears temporary files a crash left behind, and sizes the cache. */
  static async open(dataDir: string, opts: BlobStoreOptions = {}): Promise<BlobStore> {
    const dir = join(dataDir, 'blobs')
    await mkdir(dir, { recursive: true })
    const names = await readdir(dir)
    await Promise.all(
      names.filter((n) => n.startsWith(TMP_PREFIX)).map((n) => rm(join(dir, n), { force: true })),
    )
    const store = new BlobStore(dir, opts)
    for (const n of names) {
      const hash = n.slice(0, 64)
      if (!isBlobHash(hash) || n !== `${hash}.mjs`) continue
      try {
        const st = await stat(join(dir, n))
        store.track(hash, st.size, Math.max(st.atimeMs, st.mtimeMs))
      } catch {
        // gone meanwhile
      }
    }
    return store
  }

  /** Bytes held. */
  get size(): number {
    return this.total
  }

  get count(): number {
    return this.entries.size
  }

  /** Marks a blob in use until the returned function is called (idempotent). */
  pin(hash: string): () => void {
    this.pins.set(hash, (this.pins.get(hash) ?? 0) + 1)
    let done = false
    return () => {
      if (done) return
      done = true
      const n = (this.pins.get(hash) ?? 1) - 1
      if (n <= 0) this.pins.delete(hash)
      else this.pins.set(hash, n)
      this.touch(hash)
    }
  }

  /** Evicts least recently used blobs not in use until the cache fits the quota; returns how many. */
  async evict(): Promise<number> {
    if (this.total <= this.quota) return 0
    const now = this.now()
    const candidates = [...this.entries]
      .filter(([h, e]) => !this.pins.has(h) && now - e.usedAt >= RECENT_MS && !this.keep(h))
      .sort((a, b) => a[1].usedAt - b[1].usedAt)
    let n = 0
    for (const [hash, e] of candidates) {
      if (this.total <= this.quota) break
      if (this.pins.has(hash) || this.entries.get(hash) !== e) continue
      this.forget(hash)
      await rm(join(this.dir, `${hash}.mjs`), { force: true })
      n++
    }
    this.evicted += n
    return n
  }

  private track(hash: string, size: number, usedAt: number): void {
    this.forget(hash)
    this.entries.set(hash, { size, usedAt })
    this.total += size
  }

  private forget(hash: string): void {
    const e = this.entries.get(hash)
    if (e === undefined) return
    this.entries.delete(hash)
    this.total -= e.size
  }

  private touch(hash: string): void {
    const e = this.entries.get(hash)
    if (e !== undefined) e.usedAt = this.now()
  }

  /** The file holding a blob (whether or not it is there yet). Throws GN_BAD_HASH for a malformed hash. */
  pathOf(hash: string): string {
    assertBlobHash(hash)
    return join(this.dir, `${hash}.mjs`)
  }

  /** The file URL workers import a bundle from; asked once per task, so kept (a few per job). */
  urlOf(hash: string): string {
    this.touch(hash)
    let url = this.urls.get(hash)
    if (url === undefined) {
      url = pathToFileURL(this.pathOf(hash)).href
      if (this.urls.size >= 1024) this.urls.clear()
      this.urls.set(hash, url)
    }
    return url
  }

  async put(bytes: Uint8Array): Promise<string> {
    const hash = sha256Hex(bytes)
    await this.write(hash, bytes)
    return hash
  }

  /** Stores bytes that claim to be `hash` (from the network); throws GN_BLOB_HASH_MISMATCH if they are not. */
  async putVerified(hash: string, bytes: Uint8Array): Promise<void> {
    assertBlobHash(hash)
    const actual = sha256Hex(bytes)
    if (actual !== hash) {
      throw new BlobHashMismatchError(
        `blob ${hash.slice(0, 12)} failed verification: its ${bytes.byteLength} bytes hash to ${actual.slice(0, 12)}`,
      )
    }
    await this.write(hash, bytes)
  }

  async get(hash: string): Promise<Uint8Array | undefined> {
    try {
      const buf = await readFile(this.pathOf(hash))
      this.touch(hash)
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  async has(hash: string): Promise<boolean> {
    try {
      await stat(this.pathOf(hash))
      this.touch(hash)
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw err
    }
  }

  /** Size of a blob held whole, or undefined. */
  sizeOf(hash: string): number | undefined {
    return this.entries.get(hash)?.size
  }

  /**
   * `length` bytes of a blob from `offset` (fewer at its end) and its size, or
   * undefined when it is not here whole.
   */
  async readRange(
    hash: string,
    offset: number,
    length: number,
  ): Promise<{ size: number; data: Uint8Array } | undefined> {
    let fh: Awaited<ReturnType<typeof open>>
    try {
      fh = await open(this.pathOf(hash), 'r')
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
    try {
      const size = (await fh.stat()).size
      const want = Math.max(0, Math.min(length, size - offset))
      const data = new Uint8Array(want)
      let got = 0
      while (got < want) {
        const { bytesRead } = await fh.read(data, got, want - got, offset + got)
        if (bytesRead === 0) break
        got += bytesRead
      }
      this.touch(hash)
      return { size, data: got === want ? data : data.subarray(0, got) }
    } finally {
      await fh.close()
    }
  }

  /** Where a partial fetch of `hash` is written (kept across restarts). */
  partPath(hash: string): string {
    assertBlobHash(hash)
    return join(this.dir, `${PART_PREFIX}${hash}`)
  }

  /** A fresh temporary path in the store's dir (removed at the next open if left behind). */
  tmpPath(): string {
    return join(this.dir, `${TMP_PREFIX}${randomBytes(8).toString('hex')}`)
  }

  /**
   * Moves a complete, verified file at `path` (in the store's dir) into the store as `hash`,
   * read-only (tasks outside a sandbox get links to a copy of it, files.ts; a sandbox binds it read-only).
   * A blob already there wins; `path` is removed.
   */
  async adopt(hash: string, path: string): Promise<void> {
    const to = this.pathOf(hash)
    if (this.entries.has(hash) && (await this.has(hash))) {
      await rm(path, { force: true })
      return
    }
    await chmod(path, 0o444)
    const st = await stat(path)
    await rename(path, to)
    this.track(hash, st.size, this.now())
    if (this.total > this.quota) await this.evict()
  }

  /** Copies a file into the store, hashing it on the way; returns its sha256 and size. */
  async importFile(src: string): Promise<{ sha256: string; size: number }> {
    const tmp = this.tmpPath()
    const sha = createHash('sha256')
    const fh = await open(tmp, 'wx', 0o644)
    let size = 0
    try {
      for await (const chunk of createReadStream(src, { highWaterMark: 1 << 20 })) {
        sha.update(chunk as Buffer)
        await fh.write(chunk as Buffer)
        size += (chunk as Buffer).length
      }
      await fh.sync()
    } catch (err) {
      await fh.close()
      await rm(tmp, { force: true })
      throw err
    }
    await fh.close()
    const hash = sha.digest('hex')
    await this.adopt(hash, tmp)
    return { sha256: hash, size }
  }

  private async write(hash: string, bytes: Uint8Array): Promise<void> {
    const path = this.pathOf(hash)
    if (await this.has(hash)) return
    const tmp = join(this.dir, `${TMP_PREFIX}${hash.slice(0, 16)}-${randomBytes(6).toString('hex')}`)
    const fh = await open(tmp, 'wx', 0o644)
    try {
      await fh.writeFile(bytes)
      await fh.sync()
    } finally {
      await fh.close()
    }
    try {
      await rename(tmp, path)
    } catch (err) {
      await rm(tmp, { force: true })
      throw err
    }
    this.track(hash, bytes.byteLength, this.now())
    if (this.total > this.quota) await this.evict()
  }
}
