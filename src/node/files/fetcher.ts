/**
 * Brings a file (a blob of any size) into this node's blob store by its
 * sha256, piece by piece, from every peer that has it:
 *
 * - sources: the peers named first (the one that handed us the task, the
 *   job's owner), then other connected peers, each asked first whether it
 *   holds the file whole (a range of length 0: a `have` query);
 * - pieces of FILE_CHUNK_BYTES are fetched in parallel, spread over the
 *   sources, each checked against its hash in the file's chunk list (when
 *   the file has one): a corrupt piece is refused and fetched again from
 *   another source; a source that fails is dropped;
 * - pieces land in `.part-<hash>` at their offset and are noted in
 *   `.part-<hash>.done`, so a fetch cut midway (a source gone, this node
 *   killed) resumes from the pieces already verified;
 * - at the end the whole file is hashed once more before it enters the
 *   store under its name, so a lying chunk list cannot poison the cache;
 * - one fetch per hash at a time on this node: every task that needs the
 *   file waits for the same one, so a file crosses to each node once.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { appendFile, open, readFile, rm, stat } from 'node:fs/promises'
import type { BlobStore } from '../../executor/blob-store.ts'
import { fetchBlobRange, Semaphore } from '../../protocol/blob/handler.ts'
import type { OpenStream } from '../../protocol/stream.ts'
import { decodeChunkList, FILE_CHUNK_BYTES } from './chunks.ts'

export interface FileFetcherOptions {
  blobs: BlobStore
  /** Connected peers (candidates beyond the preferred ones). */
  peers: () => string[]
  /** Opens a blob stream to a peer. */
  opener: (peer: string) => OpenStream
  /** Whole small blobs (chunk lists). */
  fetchSmall: (peer: string, hash: string) => Promise<Uint8Array | undefined>
  /** Bytes of file data that arrived from `peer`. */
  onBytes?: (peer: string, bytes: number) => void
  log?: (msg: string, fields: Record<string, unknown>) => void
  /** Pieces in flight per file (default 8). */
  parallel?: number
  /** Other peers asked whether they hold a file (default 16). */
  maxProbes?: number
}

export interface FileRef {
  sha256: string
  size: number
  /** The hash of its chunk list, if it has one. */
  chunks?: string
}

export interface EnsureOptions {
  /** Peers to try first, in order (e.g. the task's giver, then the job's owner). */
  prefer: string[]
  /** Ask other connected peers too (default true; outputs come only from their holder). */
  others?: boolean
  signal?: AbortSignal
}

/** Pieces fetched at once by this node, all files together. */
const pieceSlots = new Semaphore(16)

export class FileFetcher {
  private readonly o: FileFetcherOptions
  private readonly inflight = new Map<string, Promise<void>>()
  /** Per source: pieces refused for a bad hash (a source refused twice is dropped). */
  corruptPieces = 0
  resumedPieces = 0

  constructor(o: FileFetcherOptions) {
    this.o = o
  }

  /** Resolves once `file` is whole in the blob store (fetched if need be). */
  ensure(file: FileRef, opts: EnsureOptions): Promise<void> {
    let p = this.inflight.get(file.sha256)
    if (p === undefined) {
      // The fetch is the node's, not one task's: a cancelled task stops waiting, the fetch goes on
      // for the others (and for the cache).
      p = this.fetch(file, { ...opts, signal: undefined }).finally(() => this.inflight.delete(file.sha256))
      p.catch(() => {})
      this.inflight.set(file.sha256, p)
    }
    const signal = opts.signal
    if (signal === undefined) return p
    if (signal.aborted) return Promise.reject(signal.reason)
    return new Promise<void>((resolve, reject) => {
      const onAbort = () => reject(signal.reason)
      signal.addEventListener('abort', onAbort, { once: true })
      p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort))
    })
  }

  private async fetch(file: FileRef, opts: EnsureOptions): Promise<void> {
    const blobs = this.o.blobs
    if (await blobs.has(file.sha256)) return
    const self = new Set<string>()
    const preferred = opts.prefer.filter((p, i, all) => all.indexOf(p) === i)
    // One piece: try the preferred peers in turn (no round of questions); more: ask who has it.
    let sources =
      file.size > FILE_CHUNK_BYTES || preferred.length === 0
        ? await this.probe(file.sha256, preferred, opts.others !== false, self)
        : preferred.slice()
    for (const p of preferred) self.add(p)
    if (sources.length === 0)
      throw new Error(`file ${file.sha256.slice(0, 12)} is on none of ${self.size} peers asked`)
    const pieces = file.chunks ? await this.chunkList(file, sources) : undefined
    const chunk = FILE_CHUNK_BYTES
    const count = Math.max(1, Math.ceil(file.size / chunk))
    const part = blobs.partPath(file.sha256)
    const donePath = `${part}.done`
    const done = await readDone(donePath, count)
    if (done.size > 0) this.resumedPieces += done.size
    const fh = await open(part, done.size > 0 ? 'r+' : 'w+').catch(() => open(part, 'w+'))
    try {
      if (done.size === 0) await fh.truncate(file.size)
      const todo = [...Array(count).keys()].filter((i) => !done.has(i))
      const bad = new Map<string, number>()
      let next = 0
      const worker = async (): Promise<void> => {
        while (next < todo.length) {
          const i = todo[next++]
          let tries = 0
          for (;;) {
            opts.signal?.throwIfAborted()
            if (sources.length === 0) {
              // Everyone we knew failed: ask again once (a peer may have finished its own copy meanwhile).
              sources = await this.probe(file.sha256, preferred, opts.others !== false, self)
              if (sources.length === 0 || ++tries > 3)
                throw new Error(`file ${file.sha256.slice(0, 12)}: no source left for piece ${i}`)
            }
            const src = sources[(i + tries) % sources.length]
            const offset = i * chunk
            const length = Math.min(chunk, file.size - offset)
            let got: { size: number; data: Uint8Array } | undefined
            const release = await pieceSlots.acquire(opts.signal)
            try {
              got = await fetchBlobRange(this.o.opener(src), file.sha256, offset, length, {
                signal: opts.signal,
                slots: unlimited,
              })
            } catch (err) {
              this.o.log?.('piece fetch failed', { peer: src, piece: i, err: (err as Error).message })
              got = undefined
              if (/rate|try later/i.test((err as Error).message)) {
                release()
                await new Promise((r) => setTimeout(r, 200 + Math.random() * 300))
                tries++
                continue
              }
            } finally {
              release()
            }
            const ok =
              got !== undefined &&
              got.size === file.size &&
              got.data.byteLength === length &&
              (pieces === undefined || sha256(got.data) === pieces[i])
            if (!ok) {
              if (got !== undefined && got.size === file.size) {
                this.corruptPieces++
                const n = (bad.get(src) ?? 0) + 1
                bad.set(src, n)
                this.o.log?.('refused a corrupt piece', { peer: src, piece: i })
                if (n >= 2) sources = sources.filter((s) => s !== src)
              } else sources = sources.filter((s) => s !== src)
              tries++
              continue
            }
            await fh.write(got!.data, 0, length, offset)
            await appendFile(donePath, `${i}\n`)
            this.o.onBytes?.(src, length)
            break
          }
        }
      }
      // At most two pieces in flight per source: deeper queues on one connection delay its pings
      // past the connection monitor's timeout (and the whole connection is dropped).
      const n = Math.min(this.o.parallel ?? 8, todo.length, 2 * Math.max(1, sources.length))
      await Promise.all(Array.from({ length: n }, () => worker()))
      await fh.sync()
    } finally {
      await fh.close()
    }
    const actual = await hashFile(part)
    if (actual !== file.sha256) {
      await rm(part, { force: true })
      await rm(donePath, { force: true })
      throw new Error(
        `file ${file.sha256.slice(0, 12)} did not verify as a whole (got ${actual.slice(0, 12)})`,
      )
    }
    await blobs.adopt(file.sha256, part)
    await rm(donePath, { force: true })
  }

  /** Peers that hold `hash` whole: the preferred first, then (if asked) others, probed in parallel. */
  private async probe(
    hash: string,
    prefer: string[],
    others: boolean,
    asked: Set<string>,
  ): Promise<string[]> {
    const rest = others
      ? shuffle(this.o.peers().filter((p) => !prefer.includes(p))).slice(0, this.o.maxProbes ?? 16)
      : []
    const candidates = [...prefer, ...rest]
    for (const c of candidates) asked.add(c)
    const answers = await Promise.all(
      candidates.map((peer) =>
        fetchBlobRange(this.o.opener(peer), hash, 0, 0, { slots: unlimited, timeoutMs: 10_000 }).then(
          (r) => (r === undefined ? undefined : peer),
          () => undefined,
        ),
      ),
    )
    const have = answers.filter((p): p is string => p !== undefined)
    this.o.log?.('asked who holds a file', { hash: hash.slice(0, 12), asked: candidates.length, have })
    return have
  }

  private async chunkList(file: FileRef, sources: string[]): Promise<string[]> {
    const hash = file.chunks!
    let bytes = await this.o.blobs.get(hash)
    if (bytes === undefined) {
      for (const s of sources) {
        try {
          const b = await this.o.fetchSmall(s, hash)
          if (b !== undefined && sha256(b) === hash) {
            await this.o.blobs.putVerified(hash, b)
            bytes = b
            break
          }
        } catch {
          // next source
        }
      }
    }
    if (bytes === undefined) throw new Error(`chunk list ${hash.slice(0, 12)} is on none of the sources`)
    const list = decodeChunkList(bytes)
    if (list.sha256 !== file.sha256 || list.size !== file.size || list.chunk !== FILE_CHUNK_BYTES)
      throw new Error(`chunk list ${hash.slice(0, 12)} does not describe file ${file.sha256.slice(0, 12)}`)
    return list.pieces
  }
}

/** No limit: pieces are bounded by pieceSlots instead. */
const unlimited = new Semaphore(Number.MAX_SAFE_INTEGER)

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex')
}

async function hashFile(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer)
  return h.digest('hex')
}

async function readDone(path: string, count: number): Promise<Set<number>> {
  try {
    await stat(path)
    const text = await readFile(path, 'utf8')
    const done = new Set<number>()
    for (const line of text.split('\n')) {
      const n = Number(line)
      if (line !== '' && Number.isInteger(n) && n >= 0 && n < count) done.add(n)
    }
    return done
  } catch {
    return new Set()
  }
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1))
    ;[a[i], a[j]] = [a[j], a[i]]
  }
  return a
}
