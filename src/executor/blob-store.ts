/**
 * Content-addressed bytes in `<dataDir>/blobs`, one file per blob named
 * `<sha256 hex>.mjs` (the extension lets a bundle be imported straight from
 * its file; other blobs do not care). Writes are atomic (temporary file,
 * fsync, rename), so a reader sees a whole blob or none.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { pathToFileURL } from 'node:url'
import { BadHashError, BlobHashMismatchError } from './errors.ts'

const HASH = /^[0-9a-f]{64}$/
const TMP_PREFIX = '.tmp-'

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

export class BlobStore {
  readonly dir: string

  private constructor(dir: string) {
    this.dir = dir
  }

  /** Opens (creating) `<dataDir>/blobs` and clears temporary files a crash left behind. */
  static async open(dataDir: string): Promise<BlobStore> {
    const dir = join(dataDir, 'blobs')
    await mkdir(dir, { recursive: true })
    const names = await readdir(dir)
    await Promise.all(
      names.filter((n) => n.startsWith(TMP_PREFIX)).map((n) => rm(join(dir, n), { force: true })),
    )
    return new BlobStore(dir)
  }

  /** The file holding a blob (whether or not it is there yet). Throws GN_BAD_HASH for a malformed hash. */
  pathOf(hash: string): string {
    assertBlobHash(hash)
    return join(this.dir, `${hash}.mjs`)
  }

  urlOf(hash: string): string {
    return pathToFileURL(this.pathOf(hash)).href
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
      return new Uint8Array(buf.buffer, buf.byteOffset, buf.byteLength)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
      throw err
    }
  }

  async has(hash: string): Promise<boolean> {
    try {
      await stat(this.pathOf(hash))
      return true
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false
      throw err
    }
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
  }
}
