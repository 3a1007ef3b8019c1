/**
 * The control API for files: a client asks whether the daemon holds a file
 * (`GET /v1/files/:hash`), uploads one it lacks as a stream (`PUT
 * /v1/files/:hash`, verified against its hash; no size cap), and downloads
 * outputs (`GET /v1/files/:hash/content`). A job's `files` manifest and
 * `outputs` spec are checked at submit: every file must be here already.
 */
import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { open, rm } from 'node:fs/promises'
import type { FileEntry, OutputSpec } from '../../domain/types.ts'
import { decodeValue } from '../../domain/values.ts'
import type { BlobStore } from '../../executor/blob-store.ts'
import { isPlainRelative } from '../../executor/files.ts'
import { fileEntry, MAX_JOB_FILES, MAX_OUTPUT_GLOBS, outputSpec } from '../../protocol/schemas.ts'
import { ApiError, type ApiServer, STREAMED } from '../api.ts'
import type { Driver, SubmitRequest } from '../driver.ts'

const HASH = /^[0-9a-f]{64}$/
/** Default bytes of outputs one task may bring back. */
export const DEFAULT_OUTPUT_MAX_BYTES = 1024 ** 3

function bad(message: string): ApiError {
  return new ApiError(400, 'GN_BAD_SUBMIT', message)
}

function hashParam(h: string): string {
  if (!HASH.test(h)) throw new ApiError(400, 'GN_BAD_HASH', `not a sha256 hex digest: ${h.slice(0, 80)}`)
  return h
}

export function registerFileRoutes(api: ApiServer, driver: Driver): void {
  api.route('GET', '/v1/files/:hash', (req) => {
    const hash = hashParam(req.params.hash)
    const size = driver.blobs.sizeOf(hash)
    return { hash, have: size !== undefined, size: size ?? 0 }
  })
  api.httpRoute(
    'PUT',
    '/v1/files/:hash',
    async (req) => {
      const hash = hashParam(req.params.hash)
      const blobs = driver.blobs
      if (blobs.sizeOf(hash) !== undefined) {
        req.raw.resume()
        return { hash, size: blobs.sizeOf(hash) }
      }
      const tmp = blobs.tmpPath()
      const fh = await open(tmp, 'wx', 0o644)
      const sha = createHash('sha256')
      let size = 0
      try {
        for await (const chunk of req.raw) {
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
      const actual = sha.digest('hex')
      if (actual !== hash) {
        await rm(tmp, { force: true })
        throw new ApiError(
          400,
          'GN_BLOB_HASH_MISMATCH',
          `the ${size} bytes sent hash to ${actual}, not ${hash}`,
        )
      }
      await blobs.adopt(hash, tmp)
      if (driver.files) driver.files.uploadedBytes += size
      return { hash, size }
    },
    { rawBody: true },
  )
  // The input of every task as `{}` in an output dir sees it (`gridnode results --output-dir out/{}`).
  api.route('GET', '/v1/jobs/:id/input-lines', (req) => {
    if (driver.hub.store.job(req.params.id) === undefined)
      throw new ApiError(
        404,
        'GN_NO_SUCH_JOB',
        `no job ${req.params.id} on this node (gridnode jobs lists them)`,
      )
    return driver.hub.store.tasks(req.params.id).map((t) => {
      try {
        const v = decodeValue(t.input)
        return typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v))
      } catch {
        return String(t.index)
      }
    })
  })
  api.httpRoute('GET', '/v1/files/:hash/content', (req) => {
    const hash = hashParam(req.params.hash)
    const size = driver.blobs.sizeOf(hash)
    if (size === undefined)
      throw new ApiError(404, 'GN_NO_SUCH_FILE', `file ${hash.slice(0, 12)} is not in this node's blob store`)
    req.res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': size })
    const stream = createReadStream(driver.blobs.pathOf(hash))
    stream.on('error', () => req.res.destroy())
    stream.pipe(req.res)
    return STREAMED
  })
}

/** The `files` and `outputs` of an encoded job, shape-checked (presence is checked by checkJobFiles). */
export function parseJobFiles(o: Record<string, unknown>): Pick<SubmitRequest, 'files' | 'outputs'> {
  const out: Pick<SubmitRequest, 'files' | 'outputs'> = {}
  if (o.files !== undefined && o.files !== null) {
    if (!Array.isArray(o.files)) throw bad('files must be a list')
    if (o.files.length > MAX_JOB_FILES) throw bad(`a job may stage at most ${MAX_JOB_FILES} files`)
    const seen = new Set<string>()
    const files: FileEntry[] = o.files.map((f, i) => {
      let e: FileEntry
      try {
        e = fileEntry(f, `files[${i}]`)
      } catch (err) {
        throw bad((err as Error).message)
      }
      if (!isPlainRelative(e.path)) throw bad(`files[${i}].path is not a plain relative path`)
      if (seen.has(e.path)) throw bad(`two input files have the path ${e.path}`)
      seen.add(e.path)
      return e
    })
    // A file under a path that is also a file's directory: one of them could not be staged.
    for (const p of seen) {
      const parts = p.split('/')
      for (let k = 1; k < parts.length; k++)
        if (seen.has(parts.slice(0, k).join('/')))
          throw bad(`input ${p} lies under ${parts.slice(0, k).join('/')}, which is a file`)
    }
    if (files.length > 0) out.files = files
  }
  if (o.outputs !== undefined && o.outputs !== null) {
    const raw = o.outputs as Record<string, unknown>
    const spec = {
      globs: raw.globs,
      maxBytes: raw.maxBytes ?? DEFAULT_OUTPUT_MAX_BYTES,
      ...(raw.perTask === true ? { perTask: true } : {}),
    }
    let checked: OutputSpec
    try {
      checked = outputSpec(spec, 'outputs')
    } catch (err) {
      throw bad((err as Error).message)
    }
    if (checked.globs.length > MAX_OUTPUT_GLOBS) throw bad(`at most ${MAX_OUTPUT_GLOBS} output globs`)
    if (checked.globs.length > 0) out.outputs = checked
  }
  return out
}

/** Every input file (and chunk list) of a job must be in the owner's blob store when it is submitted. */
export function checkJobFiles(blobs: BlobStore, req: SubmitRequest): SubmitRequest {
  if ((req.files !== undefined || req.outputs !== undefined) && req.work.kind === 'noop')
    throw bad(
      'input files and outputs need a command or a function task: a noop task has no working directory',
    )
  for (const f of req.files ?? []) {
    const size = blobs.sizeOf(f.sha256)
    if (size === undefined)
      throw bad(`input ${f.path}: file ${f.sha256.slice(0, 12)} was not uploaded (PUT /v1/files/<sha256>)`)
    if (size !== f.size)
      throw bad(`input ${f.path}: the manifest says ${f.size} bytes, the stored file has ${size}`)
    if (f.chunks !== undefined && blobs.sizeOf(f.chunks) === undefined)
      throw bad(`input ${f.path}: its chunk list ${f.chunks.slice(0, 12)} was not uploaded`)
  }
  return req
}
