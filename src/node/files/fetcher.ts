/**
 * Brings a file (a blob of any size) into this node's blob store by its
 * sha256, piece by piece, from every peer that has it, whole or in part:
 *
 * - sources: the peers named first (the one that handed us the task, the
 *   job's owner), then other members, each asked which pieces it holds (a
 *   piece-map query; peers older than it are asked the `have` query and
 *   count only when they hold the file whole); while the fetch goes on they
 *   are asked again every PIECE_MAP_REFRESH_MS, so nodes fetching the same
 *   file at once learn each other's new pieces;
 * - `spare` (the job's owner) is asked only for pieces no other source has:
 *   every fetcher starts at its own random piece, takes from the others
 *   whatever they already hold, so when many nodes fetch a new file at once
 *   the owner sends each piece about once rather than once per node;
 * - pieces of FILE_CHUNK_BYTES are fetched in parallel, at most two in
 *   flight per source, each checked against its hash in the file's chunk
 *   list (when the file has one): a corrupt piece is refused and fetched
 *   again from another source, and the source that sent it is skipped from
 *   then on; a source that fails is dropped until it answers a later query;
 * - pieces land in `.part-<hash>` at their offset and are noted in
 *   `.part-<hash>.done`, so a fetch cut midway (a source gone, this node
 *   killed) resumes from the pieces already verified; while the fetch runs,
 *   this node serves its verified pieces to others (`partialRange`,
 *   `pieceMap`), hashing each again before it leaves;
 * - at the end the whole file is hashed once more before it enters the
 *   store under its name, so a lying chunk list cannot poison the cache;
 * - one fetch per hash at a time on this node: every task that needs the
 *   file waits for the same one, so a file crosses to each node once.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { appendFile, open, readdir, readFile, rm, stat, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { type BlobStore, PART_PREFIX } from '../../executor/blob-store.ts'
import {
  fetchBlobRange,
  fetchPieceMap,
  hasPiece,
  type PieceMap,
  pieceBits,
  Semaphore,
} from '../../protocol/blob/handler.ts'
import { RemoteRequestError } from '../../protocol/errors.ts'
import type { OpenStream } from '../../protocol/stream.ts'
import { decodeChunkList, FILE_CHUNK_BYTES } from './chunks.ts'

export interface FileFetcherOptions {
  blobs: BlobStore
  /** Members (candidates beyond the preferred ones). */
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
  /** This node's peer ID: nodes fetching one file at once split the pieces they ask the spare for. */
  self?: string
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
  /** A source asked only for pieces no other source holds (the job's owner: its uplink is the limit). */
  spare?: string
  signal?: AbortSignal
}

/** Pieces fetched at once by this node, all files together. */
const pieceSlots = new Semaphore(16)
/** How often a fetch asks its sources again which pieces they hold. */
export const PIECE_MAP_REFRESH_MS = 500
/**
 * Pieces in flight per source, each asked as ranges of RANGE_BYTES one after the other: file data
 * queued on one connection delays its pings, and a ping over the connection monitor's 2 s timeout
 * drops the whole connection (seen with whole 4 MiB pieces, two in flight, on a loaded machine).
 */
const PER_SOURCE = 2
export const RANGE_BYTES = 1024 * 1024
/** Verified pieces of partial files kept in memory for the next ranges asked of them. */
const SERVED_PIECES_KEPT = 4
/** Rounds of questions in a row, with no piece in between, before a fetch gives up. */
const MAX_RESURVEYS = 5

/** A fetch in progress, as this node serves it to others. */
interface Partial {
  size: number
  path: string
  pieces: string[]
  have: Set<number>
}

interface Source {
  peer: string
  /** The peer's bitfield; undefined when it holds the whole file. */
  have?: Uint8Array
  inflight: number
}

export class FileFetcher {
  private readonly o: FileFetcherOptions
  private readonly inflight = new Map<string, Promise<void>>()
  /** Files being fetched whose verified pieces this node serves. */
  private readonly partial = new Map<string, Partial>()
  /** The last pieces of partial files served (verified), oldest first. */
  private readonly servedPieces = new Map<string, Uint8Array>()
  /** Pieces refused for a bad hash, and pieces a resumed fetch did not fetch again. */
  corruptPieces = 0
  resumedPieces = 0
  /** Partial files of fetches no longer running, removed to make room for a new one. */
  droppedParts = 0
  private sizingTail: Promise<void> = Promise.resolve()

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

  private stopServing(hash: string): void {
    this.partial.delete(hash)
    for (const k of [...this.servedPieces.keys()]) if (k.startsWith(hash)) this.servedPieces.delete(k)
  }

  /** Which pieces of a file being fetched this node holds (verified), or undefined. */
  pieceMap(hash: string): PieceMap | undefined {
    const p = this.partial.get(hash)
    if (p === undefined) return undefined
    return { size: p.size, chunk: FILE_CHUNK_BYTES, have: pieceBits(p.pieces.length, p.have) }
  }

  /**
   * A verified piece of a file this node is still fetching: a range that lies within one piece
   * held, read from the `.part` file and hashed again before it leaves; else undefined.
   */
  async partialRange(
    hash: string,
    offset: number,
    length: number,
  ): Promise<{ size: number; data: Uint8Array } | undefined> {
    const p = this.partial.get(hash)
    if (p === undefined || length === 0) return undefined // a `have` query asks for whole files
    const i = Math.floor(offset / FILE_CHUNK_BYTES)
    if (!p.have.has(i)) return undefined
    const start = i * FILE_CHUNK_BYTES
    const pieceLength = Math.min(FILE_CHUNK_BYTES, p.size - start)
    if (offset + length > start + pieceLength) return undefined
    // Pieces are asked as several ranges: the last few verified pieces are kept, read and hashed once.
    const cached = this.servedPieces.get(`${hash}:${i}`)
    if (cached !== undefined)
      return { size: p.size, data: cached.subarray(offset - start, offset - start + length) }
    let fh: Awaited<ReturnType<typeof open>> | undefined
    try {
      fh = await open(p.path, 'r')
      const piece = new Uint8Array(pieceLength)
      let got = 0
      while (got < pieceLength) {
        const { bytesRead } = await fh.read(piece, got, pieceLength - got, start + got)
        if (bytesRead === 0) return undefined
        got += bytesRead
      }
      if (sha256(piece) !== p.pieces[i]) {
        p.have.delete(i)
        this.o.log?.('a piece on disk no longer matches its hash; not serving it', { hash, piece: i })
        return undefined
      }
      this.servedPieces.set(`${hash}:${i}`, piece)
      if (this.servedPieces.size > SERVED_PIECES_KEPT)
        this.servedPieces.delete(this.servedPieces.keys().next().value as string)
      return { size: p.size, data: piece.subarray(offset - start, offset - start + length) }
    } catch {
      return undefined // the part file moved into the store meanwhile: the caller asks again
    } finally {
      await fh?.close()
    }
  }

  private async fetch(file: FileRef, opts: EnsureOptions): Promise<void> {
    const blobs = this.o.blobs
    if (await blobs.has(file.sha256)) return
    // The size is what the job (any member's) claims: bound it before anything is sized by it.
    if (file.size > blobs.quota)
      throw new Error(
        `file ${file.sha256.slice(0, 12)} is ${file.size} bytes, over this node's blob cache quota of ${blobs.quota} bytes`,
      )
    const preferred = opts.prefer.filter((p, i, all) => all.indexOf(p) === i)
    const others = opts.others !== false
    const count = Math.max(1, Math.ceil(file.size / FILE_CHUNK_BYTES))
    const skipped = new Set<string>()
    const sources = new Map<string, Source>()
    const asked = new Set<string>()
    const learn = ({ found, candidates }: { found: Source[]; candidates: string[] }) => {
      // A peer asked that no longer answers (its fetch failed, it left) is no source any more.
      for (const peer of candidates)
        if (!found.some((f) => f.peer === peer) && (sources.get(peer)?.inflight ?? 1) === 0)
          sources.delete(peer)
      for (const f of found) {
        if (skipped.has(f.peer)) continue
        const known = sources.get(f.peer)
        if (known === undefined) sources.set(f.peer, f)
        else known.have = f.have
      }
    }
    // One piece: try the preferred peers in turn (no round of questions); more: ask who has what.
    if (file.size > FILE_CHUNK_BYTES || preferred.length === 0)
      learn(await this.survey(file, count, preferred, others, asked))
    else learn({ found: preferred.map((peer) => ({ peer, inflight: 0 })), candidates: [] })
    if (![...sources.values()].some((s) => s.have === undefined || s.have.some((b) => b !== 0)))
      throw new Error(`file ${file.sha256.slice(0, 12)} is on none of ${asked.size} peers asked`)
    const pieces = file.chunks
      ? await this.chunkList(
          file,
          [...sources.values()].filter((s) => s.have === undefined).map((s) => s.peer),
          [...sources.keys()],
        )
      : undefined
    const chunk = FILE_CHUNK_BYTES
    const part = blobs.partPath(file.sha256)
    const donePath = `${part}.done`
    const done = await resumable(part, donePath, file.size, count)
    if (done.size > 0) this.resumedPieces += done.size
    // Room is made and taken (the part file sized) one fetch at a time: two fetches started
    // together would otherwise both count the same free room.
    const fh = await this.sizing(async () => {
      if (done.size > 0) return open(part, 'r+').catch(() => open(part, 'w+'))
      await this.makeRoom(file)
      const created = await open(part, 'w+')
      try {
        await created.truncate(file.size)
      } catch (err) {
        await created.close()
        throw err
      }
      return created
    })
    // Without a chunk list nothing is verified piece by piece: nothing is served before the end.
    if (pieces !== undefined)
      this.partial.set(file.sha256, { size: file.size, path: part, pieces, have: done })
    let finished = false
    // One round of questions at a time (the refresher's, or workers' with every source gone).
    let asking: Promise<void> | undefined
    const ask = (): Promise<void> => {
      asking ??= this.survey(file, count, preferred, others, asked)
        .then(learn, () => {})
        .finally(() => {
          asking = undefined
          signalChange()
        })
      return asking
    }
    let wake: () => void = () => {}
    let changed = new Promise<void>((r) => (wake = r))
    const signalChange = () => {
      wake()
      changed = new Promise<void>((r) => (wake = r))
    }
    const refresher = (async () => {
      // Others fetching the same file get new pieces all the time: ask again now and then.
      if (pieces === undefined) return
      while (!finished) {
        await new Promise((r) => setTimeout(r, PIECE_MAP_REFRESH_MS))
        if (finished) return
        await ask()
      }
    })()
    try {
      const inflightPieces = new Set<number>()
      /** Pieces whose first ranges arrived before their source failed: the next source goes on from there. */
      const begun = new Map<number, { data: Uint8Array; at: number; size: number }>()
      const first = Math.floor(Math.random() * count)
      const order = [...Array(count).keys()].map((k) => (first + k) % count).filter((i) => !done.has(i))
      let resurveys = 0
      const holds = (s: Source, i: number) => s.have === undefined || hasPiece(s.have, i)
      /** Whether some source holds a piece still wanted. */
      const useful = () => [...sources.values()].some((s) => order.some((i) => !done.has(i) && holds(s, i)))
      /** The next piece and the source to ask for it, or undefined when none can be asked now. */
      const pick = (): { i: number; src: Source } | undefined => {
        const free = [...sources.values()]
          .filter((s) => s.inflight < PER_SOURCE)
          .sort((x, y) => x.inflight - y.inflight || Math.random() - 0.5)
        const todo = order.filter((i) => !done.has(i) && !inflightPieces.has(i))
        if (todo.length === 0) return undefined
        // Anyone but the spare first, for any piece it holds.
        for (const s of free) {
          if (s.peer === opts.spare) continue
          const i = todo.find((k) => holds(s, k))
          if (i !== undefined) return { i, src: s }
        }
        // The spare: only pieces that no other source holds, and first this node's share of them:
        // the nodes fetching the file now (sorted by ID) take every k-th piece from the spare, so
        // each piece leaves it about once; the others' shares come from them.
        const spare = free.find((s) => s.peer === opts.spare)
        if (spare !== undefined) {
          const all = [...sources.values()]
          const others = all.filter((s) => s.peer !== opts.spare)
          const fetching = [this.o.self ?? '', ...all.filter((s) => s.have !== undefined).map((s) => s.peer)]
          fetching.sort()
          const k = fetching.length
          const rank = fetching.indexOf(this.o.self ?? '')
          const mine = (p: number) => p % k === rank
          const unheld = (p: number) => holds(spare, p) && !others.some((s) => holds(s, p))
          // The others' shares: from them once they have them (a node that stops fetching drops out of
          // the next round of questions, and the shares are cut again).
          const i = todo.find((p) => mine(p) && unheld(p))
          if (i !== undefined) return { i, src: spare }
        }
        return undefined
      }
      const worker = async (): Promise<void> => {
        for (;;) {
          opts.signal?.throwIfAborted()
          if (order.every((i) => done.has(i))) return
          if (sources.size === 0 || (inflightPieces.size === 0 && !useful())) {
            // Everyone we knew failed (a dropped connection fails every stream on it): ask again
            // after a pause, a few times in a row at most.
            if (++resurveys > MAX_RESURVEYS)
              throw new Error(`file ${file.sha256.slice(0, 12)}: no source left for its pieces`)
            await new Promise((r) => setTimeout(r, 250 * resurveys))
            await ask()
            continue
          }
          const next = pick()
          if (next === undefined) {
            if (order.every((i) => done.has(i) || inflightPieces.has(i))) return
            // Wanted pieces are with busy sources, or with none yet: wait for a change.
            await Promise.race([changed, new Promise((r) => setTimeout(r, PIECE_MAP_REFRESH_MS))])
            continue
          }
          const { i, src } = next
          inflightPieces.add(i)
          src.inflight++
          const offset = i * chunk
          const length = Math.min(chunk, file.size - offset)
          let got: { size: number; data: Uint8Array } | undefined
          let busy = false
          const release = await pieceSlots.acquire(opts.signal)
          try {
            let progress = begun.get(i)
            if (progress === undefined) {
              progress = { data: new Uint8Array(length), at: 0, size: 0 }
              begun.set(i, progress)
            }
            got = await this.fetchPiece(src.peer, file.sha256, offset, progress, opts.signal)
          } catch (err) {
            this.o.log?.('piece fetch failed', { peer: src.peer, piece: i, err: (err as Error).message })
            got = undefined
            busy = err instanceof RemoteRequestError && /rate|try later/i.test(err.message)
          } finally {
            release()
            src.inflight--
          }
          if (busy) {
            inflightPieces.delete(i)
            await new Promise((r) => setTimeout(r, 200 + Math.random() * 300))
            signalChange()
            continue
          }
          const ok =
            got !== undefined &&
            got.size === file.size &&
            got.data.byteLength === length &&
            (pieces === undefined || sha256(got.data) === pieces[i])
          if (got !== undefined) begun.delete(i)
          if (!ok) {
            inflightPieces.delete(i)
            if (got !== undefined && got.size === file.size) {
              this.corruptPieces++
              this.o.log?.('refused a corrupt piece; skipping its source', { peer: src.peer, piece: i })
              skipped.add(src.peer)
            }
            sources.delete(src.peer)
            signalChange()
            continue
          }
          try {
            await fh.write(got!.data, 0, length, offset)
            await appendFile(donePath, `${i}\n`)
            done.add(i)
            resurveys = 0
          } finally {
            // Only now: until the piece is written, no other worker may take it up again.
            inflightPieces.delete(i)
          }
          this.o.onBytes?.(src.peer, length)
          signalChange()
        }
      }
      const n = Math.min(this.o.parallel ?? 8, order.length)
      await Promise.all(Array.from({ length: n }, () => worker()))
      await fh.sync()
    } catch (err) {
      // No longer fetching: others stop counting on this node for their share of the pieces.
      this.stopServing(file.sha256)
      throw err
    } finally {
      finished = true
      signalChange()
      await fh.close()
      await refresher.catch(() => {})
    }
    try {
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
    } finally {
      this.stopServing(file.sha256)
    }
  }

  /** Runs `fn` after every earlier call's has settled (see fetch). */
  private sizing<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.sizingTail.then(fn, fn)
    this.sizingTail = run.then(
      () => undefined,
      () => undefined,
    )
    return run
  }

  /**
   * Before a fetch starts from nothing: partial files count against the blob quota. Those of
   * fetches no longer running (cut by a source that went away, a cancelled job, a restart) are
   * removed, least recently written first, until this one fits beside them; then the disk must
   * have room for it. Without this, fetches that never finish (a member serving all but the last
   * piece of ever new files) would fill the disk.
   */
  private async makeRoom(file: FileRef): Promise<void> {
    const blobs = this.o.blobs
    const parts: Array<{ path: string; size: number; at: number; hash: string }> = []
    for (const name of await readdir(blobs.dir)) {
      if (!name.startsWith(PART_PREFIX) || name.endsWith('.done')) continue
      const hash = name.slice(PART_PREFIX.length)
      if (hash === file.sha256) continue // this fetch's own, begun under another size: truncated below
      try {
        const st = await stat(join(blobs.dir, name))
        parts.push({ path: join(blobs.dir, name), size: st.size, at: st.mtimeMs, hash })
      } catch {
        // gone meanwhile
      }
    }
    parts.sort((a, b) => a.at - b.at)
    let total = parts.reduce((sum, p) => sum + p.size, 0)
    for (const p of parts) {
      if (total + file.size <= blobs.quota) break
      if (this.inflight.has(p.hash)) continue
      await rm(p.path, { force: true })
      await rm(`${p.path}.done`, { force: true })
      total -= p.size
      this.droppedParts++
    }
    if (total + file.size > blobs.quota)
      throw new Error(
        `file ${file.sha256.slice(0, 12)} (${file.size} bytes) does not fit in the blob cache quota (${blobs.quota} bytes) beside the files being fetched now`,
      )
    const fs = await statfs(blobs.dir)
    const free = fs.bavail * fs.bsize
    if (file.size > free)
      throw new Error(
        `file ${file.sha256.slice(0, 12)} is ${file.size} bytes; the disk of ${blobs.dir} has ${free} bytes free`,
      )
  }

  /**
   * One piece from one source, as ranges of at most RANGE_BYTES asked one after the other, from
   * where an earlier source left off: the source never has more than RANGE_BYTES of ours queued
   * on the connection per piece in flight (the connection monitor's pings wait behind file data),
   * and a source lost midway costs at most one range.
   */
  private async fetchPiece(
    peer: string,
    hash: string,
    offset: number,
    progress: { data: Uint8Array; at: number; size: number },
    signal: AbortSignal | undefined,
  ): Promise<{ size: number; data: Uint8Array } | undefined> {
    const length = progress.data.byteLength
    while (progress.at < length) {
      const want = Math.min(RANGE_BYTES, length - progress.at)
      const r = await fetchBlobRange(this.o.opener(peer), hash, offset + progress.at, want, {
        signal,
        slots: unlimited,
      })
      if (r === undefined) return undefined
      if (r.data.byteLength !== want || (progress.size !== 0 && r.size !== progress.size))
        return { size: r.size, data: r.data }
      progress.size = r.size
      progress.data.set(r.data, progress.at)
      progress.at += want
    }
    return { size: progress.size, data: progress.data }
  }

  /**
   * Asks the preferred peers and (if `others`) up to maxProbes other members which pieces of
   * `file` they hold, in parallel: those that hold some (whole holders with no bitfield).
   */
  private async survey(
    file: FileRef,
    count: number,
    prefer: string[],
    others: boolean,
    asked: Set<string>,
  ): Promise<{ found: Source[]; candidates: string[] }> {
    const rest = others
      ? shuffle(this.o.peers().filter((p) => !prefer.includes(p))).slice(0, this.o.maxProbes ?? 16)
      : []
    const candidates = [...prefer, ...rest]
    for (const c of candidates) asked.add(c)
    const answers = await Promise.all(
      candidates.map((peer) => this.askPieces(peer, file, count).catch(() => undefined)),
    )
    const found = answers.filter((s): s is Source => s !== undefined)
    this.o.log?.('asked who holds a file', {
      hash: file.sha256.slice(0, 12),
      asked: candidates.length,
      whole: found.filter((s) => s.have === undefined).map((s) => s.peer),
      partial: found.filter((s) => s.have !== undefined).map((s) => s.peer),
    })
    return { found, candidates }
  }

  /** One peer's pieces of `file` (a piece-map query; a `have` query for peers older than it). */
  private async askPieces(peer: string, file: FileRef, count: number): Promise<Source | undefined> {
    let map: PieceMap | undefined
    try {
      map = await fetchPieceMap(this.o.opener(peer), file.sha256, { timeoutMs: 10_000 })
    } catch (err) {
      const name = (err as Error).name
      if (err instanceof RemoteRequestError || name === 'TimeoutError' || name === 'AbortError') throw err
      // A peer older than the piece-map query resets the stream: ask whether it holds the file whole.
      const r = await fetchBlobRange(this.o.opener(peer), file.sha256, 0, 0, {
        slots: unlimited,
        timeoutMs: 10_000,
      })
      return r === undefined || r.size !== file.size ? undefined : { peer, inflight: 0 }
    }
    if (map === undefined || map.size !== file.size || map.chunk !== FILE_CHUNK_BYTES) return undefined
    let all = true
    let any = false
    for (let i = 0; i < count; i++) {
      if (hasPiece(map.have, i)) any = true
      else all = false
    }
    // A peer with no piece yet is kept: it is fetching the file too (it counts in the split).
    return { peer, inflight: 0, ...(all && any ? {} : { have: map.have }) }
  }

  private async chunkList(file: FileRef, whole: string[], all: string[]): Promise<string[]> {
    const hash = file.chunks!
    let bytes = await this.o.blobs.get(hash)
    if (bytes === undefined) {
      for (const s of [...whole, ...all.filter((p) => !whole.includes(p))]) {
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

/**
 * The pieces of an earlier fetch of this file to go on from: only if its part file has this
 * fetch's size (it was sized at its start). A part file of another size was begun under another
 * claim of the file's size: it starts again from nothing.
 */
async function resumable(part: string, donePath: string, size: number, count: number): Promise<Set<number>> {
  const st = await stat(part).catch(() => undefined)
  if (st === undefined || st.size !== size) {
    await rm(donePath, { force: true })
    return new Set()
  }
  return readDone(donePath, count)
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
