/**
 * The daemon's side of job files, between the driver and the blob store:
 *
 * - holder: before a task runs, its job's input files are brought into the
 *   blob store (fetched by hash from the peer that handed the task over, the
 *   owner and any other peer that has them) and pinned for the run; after
 *   it, its outputs are pinned until the owner has acknowledged the result;
 * - owner: before results are acknowledged, the outputs they list are
 *   fetched from their holder into the blob store, and two tasks of one job
 *   writing the same output name fail the later one, naming both;
 * - owner: dependency values over INLINE_VALUE_BYTES leave in batches as
 *   blob references (served from memory until they are on disk, kept until
 *   the job ends), and the holder fetches them before the run;
 * - serving: ranges of whole blobs to any member (files, outputs), and the
 *   verified pieces of files this node is still fetching.
 */
import { createHash } from 'node:crypto'
import { chmod } from 'node:fs/promises'
import type { BlobStore } from '../../executor/blob-store.ts'
import type { TaskFiles } from '../../executor/files.ts'
import { BLOB_CHUNK_BYTES, pieceMapBytes } from '../../protocol/blob/codec.ts'
import { type PieceMap, pieceBits } from '../../protocol/blob/handler.ts'
import type { OpenStream } from '../../protocol/stream.ts'
import type {
  Batch,
  JobSpec,
  OutputFile,
  TaskDescriptor,
  TaskKey,
  TaskOutcome,
  TaskResult,
} from '../../scheduler/types.ts'
import { type BlobRef, blobRef, INLINE_VALUE_BYTES, parseBlobRef } from './big-values.ts'
import { FILE_CHUNK_BYTES } from './chunks.ts'
import { FileFetcher } from './fetcher.ts'

export interface FilesServiceOptions {
  self: string
  blobs: BlobStore
  peers: () => string[]
  opener: (peer: string) => OpenStream
  fetchSmall: (peer: string, hash: string) => Promise<Uint8Array | undefined>
  /** Names already taken by outputs of a job (index → names), from the owner's store. */
  storedOutputs: (job: string) => Array<{ index: number; outputs: OutputFile[] }>
  onBytes?: (direction: 'fetched' | 'served', bytes: number) => void
  log?: (msg: string, fields: Record<string, unknown>) => void
}

export interface FilesStats {
  /** File bytes this node served to others (ranges). */
  servedBytes: number
  /** File bytes this node fetched from others. */
  fetchedBytes: number
  /** Pieces refused for a bad hash, and pieces a resumed fetch did not fetch again. */
  corruptPieces: number
  resumedPieces: number
  /** Outputs held for owners that have not acknowledged them yet. */
  heldOutputs: number
  /** File bytes clients uploaded to this node (PUT /v1/files). */
  uploadedBytes: number
}

/**
 * Fault injection for tests, from the environment: `GRIDNODE_FAULT_SLOW_PIECE_MS` delays every
 * range served; `GRIDNODE_FAULT_CORRUPT_PIECES=N` flips a byte in the first N ranges served.
 */
const faults = {
  slowMs: Number(process.env.GRIDNODE_FAULT_SLOW_PIECE_MS ?? 0) || 0,
  corrupt: Number(process.env.GRIDNODE_FAULT_CORRUPT_PIECES ?? 0) || 0,
}

const key = (t: TaskKey) => `${t.job}#${t.index}#${t.attempt}`

export class FilesService {
  private readonly o: FilesServiceOptions
  readonly fetcher: FileFetcher
  private servedBytes = 0
  private fetchedBytes = 0
  uploadedBytes = 0
  /** Holder: outputs pinned until the owner acknowledges the task's result. */
  private readonly held = new Map<string, () => void>()
  /** Owner: per job, output name → task index that wrote it (filled from the store on first use). */
  private readonly names = new Map<string, Map<string, number>>()
  /** Owner: dependency values sent as references, served from memory until written to the blob store. */
  private readonly pendingValues = new Map<string, Uint8Array>()
  /** Owner: the hash of each big dependency value (the scheduler hands the same bytes to every dependent). */
  private readonly valueHashes = new WeakMap<Uint8Array, string>()
  /** Owner: per job, the pins of its dependency values (released when the job ends). */
  private readonly valuePins = new Map<string, Map<string, () => void>>()

  constructor(o: FilesServiceOptions) {
    this.o = o
    this.fetcher = new FileFetcher({
      self: o.self,
      blobs: o.blobs,
      peers: o.peers,
      opener: o.opener,
      fetchSmall: o.fetchSmall,
      log: o.log,
      onBytes: (_peer, n) => {
        this.fetchedBytes += n
        o.onBytes?.('fetched', n)
      },
    })
  }

  stats(): FilesStats {
    return {
      servedBytes: this.servedBytes,
      fetchedBytes: this.fetchedBytes,
      corruptPieces: this.fetcher.corruptPieces,
      resumedPieces: this.fetcher.resumedPieces,
      heldOutputs: this.held.size,
      uploadedBytes: this.uploadedBytes,
    }
  }

  /**
   * Serves a range of a whole blob (or answers a `have` query), else a dependency value not yet on
   * disk, else a verified piece of a file this node is still fetching.
   */
  async range(hash: string, offset: number, length: number) {
    let r = await this.o.blobs.readRange(hash, offset, length)
    if (r === undefined) {
      const v = this.pendingValues.get(hash)
      if (v !== undefined) {
        const from = Math.min(offset, v.byteLength)
        r = { size: v.byteLength, data: v.slice(from, Math.min(v.byteLength, from + length)) }
      }
    }
    if (r === undefined) r = await this.fetcher.partialRange(hash, offset, length)
    if (r !== undefined && r.data.byteLength > 0 && faults.slowMs > 0)
      await new Promise((done) => setTimeout(done, faults.slowMs))
    if (r !== undefined && r.data.byteLength > 0 && faults.corrupt > 0) {
      faults.corrupt--
      r.data[0] ^= 0xff
    }
    if (r !== undefined && r.data.byteLength > 0) {
      this.servedBytes += r.data.byteLength
      this.o.onBytes?.('served', r.data.byteLength)
    }
    return r
  }

  /** Which pieces of a file this node holds: all of a whole blob, the verified ones of a fetch in progress. */
  async pieceMap(hash: string): Promise<PieceMap | undefined> {
    const size = this.o.blobs.sizeOf(hash) ?? this.pendingValues.get(hash)?.byteLength
    if (size !== undefined && (this.pendingValues.has(hash) || (await this.o.blobs.has(hash)))) {
      const count = Math.max(1, Math.ceil(size / FILE_CHUNK_BYTES))
      if (pieceMapBytes(size, FILE_CHUNK_BYTES) > BLOB_CHUNK_BYTES) return undefined
      return { size, chunk: FILE_CHUNK_BYTES, have: pieceBits(count, 'all') }
    }
    return this.fetcher.pieceMap(hash)
  }

  /**
   * Holder, before a run: every input file of the job in the blob store,
   * pinned. Resolves to what the executor stages and collects, and the unpin.
   */
  async prepare(
    job: JobSpec,
    task: TaskDescriptor,
    signal?: AbortSignal,
  ): Promise<{ files?: TaskFiles; release: () => void }> {
    const files = job.files ?? []
    if (files.length === 0 && job.outputs === undefined) return { release: () => {} }
    const unpins = files.map((f) => this.o.blobs.pin(f.sha256))
    const release = () => {
      for (const u of unpins) u()
    }
    try {
      if (job.owner !== this.o.self) {
        const prefer = [giverOf(task, job.owner, this.o.self), job.owner].filter(
          (p, i, all) => p !== this.o.self && all.indexOf(p) === i,
        )
        const unique = new Map(files.map((f) => [f.sha256, f]))
        await Promise.all(
          [...unique.values()].map((f) => this.fetcher.ensure(f, { prefer, spare: job.owner, signal })),
        )
      }
      // Executable inputs: the cached copy itself gets the x bits (a sandbox binds it as it is).
      for (const f of files)
        if (f.mode & 0o111) await chmod(this.o.blobs.pathOf(f.sha256), 0o555).catch(() => undefined)
      return {
        files: {
          inputs: files.map((f) => ({ path: f.path, source: this.o.blobs.pathOf(f.sha256), mode: f.mode })),
          outputs: job.outputs,
        },
        release,
      }
    } catch (err) {
      release()
      throw err
    }
  }

  /** Holder: a run's outputs (and a big value) stay pinned until the owner acknowledges its result. */
  holdOutputs(task: TaskKey, outputs: Array<{ sha256: string }> | undefined): void {
    if (outputs === undefined || outputs.length === 0) return
    const unpins = outputs.map((o) => this.o.blobs.pin(o.sha256))
    const before = this.held.get(key(task))
    this.held.set(key(task), () => {
      before?.()
      for (const u of unpins) u()
    })
  }

  /**
   * Holder, for another node's task: a value over INLINE_VALUE_BYTES goes into the blob store
   * (pinned until acked) and the result carries its reference instead.
   */
  async outgoing(task: TaskKey, outcome: TaskOutcome): Promise<TaskOutcome> {
    if (outcome.status !== 'ok' || outcome.value.byteLength <= INLINE_VALUE_BYTES) return outcome
    let hash: string
    try {
      hash = await this.o.blobs.put(outcome.value)
    } catch (err) {
      // Cannot store it (disk full...): the result goes inline, and over the message cap it is refused
      // like any other oversized result.
      this.o.log?.('cannot store a big result as a blob', { err: (err as Error).message })
      return outcome
    }
    this.holdOutputs(task, [{ sha256: hash }])
    return { ...outcome, value: blobRef(hash, outcome.value.byteLength) }
  }

  /** Holder: a task whose input or dependency values are blob references gets their bytes (fetched like files). */
  async resolveInput(job: JobSpec, task: TaskDescriptor, signal?: AbortSignal): Promise<TaskDescriptor> {
    const ref = parseBlobRef(task.input)
    const depRefs = task.depValues.map((d) => parseBlobRef(d))
    if (ref === undefined && depRefs.every((d) => d === undefined)) return task
    const prefer = [giverOf(task, job.owner, this.o.self), job.owner].filter(
      (p, i, all) => p !== this.o.self && all.indexOf(p) === i,
    )
    const [input, ...depValues] = await Promise.all(
      [ref, ...depRefs].map((r, i) =>
        r === undefined
          ? Promise.resolve(i === 0 ? task.input : task.depValues[i - 1])
          : this.bytesOf(r, prefer, true, signal),
      ),
    )
    return { ...task, input, depValues }
  }

  /**
   * A batch as it leaves this node: dependency values over INLINE_VALUE_BYTES become 48-byte
   * references (the bytes are served from memory until they are in the blob store, and kept there
   * until the job ends), so a big result feeding its dependents never meets the message cap.
   * The same batch when nothing is big.
   */
  outgoingBatch(batch: Batch): Batch {
    let changed = false
    const tasks = batch.tasks.map((t) => {
      if (!t.depValues.some((d) => d.byteLength > INLINE_VALUE_BYTES)) return t
      changed = true
      return {
        ...t,
        depValues: t.depValues.map((d) =>
          d.byteLength > INLINE_VALUE_BYTES ? this.offerValue(t.job, d) : d,
        ),
      }
    })
    return changed ? { ...batch, tasks } : batch
  }

  /** Owner: a big value other nodes will fetch by hash; answers its reference. */
  private offerValue(job: string, value: Uint8Array): Uint8Array {
    let hash = this.valueHashes.get(value)
    if (hash === undefined) {
      hash = createHash('sha256').update(value).digest('hex')
      this.valueHashes.set(value, hash)
    }
    let pins = this.valuePins.get(job)
    if (pins === undefined) {
      pins = new Map()
      this.valuePins.set(job, pins)
    }
    if (!pins.has(hash)) {
      pins.set(hash, this.o.blobs.pin(hash))
      if (this.o.blobs.sizeOf(hash) === undefined && !this.pendingValues.has(hash)) {
        const h = hash
        this.pendingValues.set(h, value)
        this.o.blobs
          .put(value)
          .catch((err) => this.o.log?.('cannot store a dependency value', { err: (err as Error).message }))
          .finally(() => this.pendingValues.delete(h))
      }
    }
    return blobRef(hash, value.byteLength)
  }

  /** Owner: a job ended; the dependency values it sent may leave the cache. */
  jobEnded(job: string): void {
    const pins = this.valuePins.get(job)
    if (pins === undefined) return
    this.valuePins.delete(job)
    for (const unpin of pins.values()) unpin()
  }

  private async bytesOf(ref: BlobRef, prefer: string[], others: boolean, signal?: AbortSignal) {
    await this.fetcher.ensure({ sha256: ref.sha256, size: ref.size }, { prefer, others, signal })
    const bytes = await this.o.blobs.get(ref.sha256)
    if (bytes === undefined) throw new Error(`value ${ref.sha256.slice(0, 12)} left the blob cache`)
    return bytes
  }

  /** Owner, at submit: task inputs over INLINE_VALUE_BYTES become blob references; answers their hashes. */
  async bigInputs(tasks: Array<{ input: Uint8Array }>): Promise<string[]> {
    const hashes: string[] = []
    for (const t of tasks) {
      if (t.input.byteLength <= INLINE_VALUE_BYTES) continue
      const hash = await this.o.blobs.put(t.input)
      hashes.push(hash)
      t.input = blobRef(hash, t.input.byteLength)
    }
    return hashes
  }

  /** Whether results from a peer need intake (outputs to fetch, or values sent as blobs). */
  static needsIntake(results: TaskResult[]): boolean {
    return results.some(
      (r) => r.outcome.status === 'ok' && (r.outcome.outputs !== undefined || parseBlobRef(r.outcome.value)),
    )
  }

  /** Holder: the owner acknowledged these results (or dropped the tasks). */
  acked(tasks: TaskKey[]): void {
    for (const t of tasks) {
      this.held.get(key(t))?.()
      this.held.delete(key(t))
    }
  }

  /**
   * Owner, before the scheduler sees results from `from`: brings every listed
   * output into the blob store (throws if one cannot be had: the holder keeps
   * it and sends the result again) and turns a result whose output name
   * another task of the job already wrote into a failure naming both.
   * `jobOf` gives the spec of a job owned here (undefined: not ours).
   */
  async intake<R extends TaskResult>(
    from: string,
    results: R[],
    jobOf: (id: string) => JobSpec | undefined,
  ): Promise<R[]> {
    const wanted = new Map<string, OutputFile>()
    for (const r of results) {
      if (r.outcome.status !== 'ok' || !r.outcome.outputs) continue
      if (jobOf(r.job) === undefined) continue
      for (const o of r.outcome.outputs) wanted.set(o.sha256, o)
    }
    // Values sent as blobs: fetched from their holder and put back inline (the store keeps them so).
    results = await Promise.all(
      results.map(async (r) => {
        const ref = r.outcome.status === 'ok' ? parseBlobRef(r.outcome.value) : undefined
        if (ref === undefined || r.outcome.status !== 'ok' || jobOf(r.job) === undefined) return r
        const value = await this.bytesOf(ref, [from], false)
        return { ...r, outcome: { ...r.outcome, value } }
      }),
    )
    await Promise.all(
      [...wanted.values()].map((o) =>
        from === this.o.self
          ? Promise.resolve()
          : this.fetcher.ensure({ sha256: o.sha256, size: o.size }, { prefer: [from], others: false }),
      ),
    )
    return results.map((r) => this.checkNames(r, jobOf))
  }

  private checkNames<R extends TaskResult>(r: R, jobOf: (id: string) => JobSpec | undefined): R {
    const o = r.outcome
    const spec = jobOf(r.job)
    if (o.status !== 'ok' || !o.outputs || o.outputs.length === 0 || spec?.outputs === undefined) return r
    if (spec.outputs.perTask === true) return r
    const names = this.namesOf(r.job)
    for (const f of o.outputs) {
      const other = names.get(f.name)
      if (other !== undefined && other !== r.index) {
        return {
          ...r,
          outcome: {
            status: 'threw',
            error: `output ${f.name} is written by task ${other} and by task ${r.index}: two tasks of one job may not write the same output path (write to a name with {} in it, or use --output-dir with {})`,
            durationMs: o.durationMs,
          },
        }
      }
    }
    for (const f of o.outputs) names.set(f.name, r.index)
    return r
  }

  private namesOf(job: string): Map<string, number> {
    let m = this.names.get(job)
    if (m === undefined) {
      m = new Map()
      for (const s of this.o.storedOutputs(job)) for (const f of s.outputs) m.set(f.name, s.index)
      this.names.set(job, m)
    }
    return m
  }

  /** The owner forgets a finished job's names (they are in the store). */
  forgetJob(job: string): void {
    this.names.delete(job)
  }
}

/** The peer that handed this attempt to us: the holder before us on its custody path, else the owner. */
export function giverOf(task: TaskDescriptor, owner: string, self: string): string {
  const c = task.custody
  if (c === undefined) return owner
  const path = [c.first, ...c.links.map((l) => l.to)]
  const at = path.lastIndexOf(self)
  return at > 0 ? path[at - 1] : owner
}
