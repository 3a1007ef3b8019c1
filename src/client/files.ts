/**
 * Files in and out, on the submitting side:
 *
 * - `prepareInputs(client, paths)`: every file under each path (a file, or a
 *   directory walked whole) is hashed (sha256, and each 4 MiB piece), its
 *   chunk list stored on the daemon, and its bytes uploaded only when the
 *   daemon lacks them, so a re-submitted job uploads nothing. Returns the
 *   job's manifest: each file under its base name (`scene/tex/a.png`).
 * - `OutputWriter`: writes each result's outputs under a directory (`{}`
 *   replaced by the task's input), fetched from the daemon's store; a path
 *   two tasks of one job both write is an error naming both, not an overwrite.
 */
import { createReadStream, createWriteStream } from 'node:fs'
import { lstat, mkdir, readdir, rename, rm, stat } from 'node:fs/promises'
import { request as httpRequest } from 'node:http'
import { basename, dirname, join, resolve, sep } from 'node:path'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { ChunkHasher, encodeChunkList, FILE_CHUNK_BYTES } from '../domain/chunks.ts'
import type { FileEntry, OutputFile } from '../domain/types.ts'
import { GridnodeError } from '../errors.ts'
import type { DaemonClient } from './daemon-client.ts'

/** An input path that does not exist or cannot be read. */
export class InputFileError extends GridnodeError {
  constructor(message: string) {
    super('GN_NO_SUCH_FILE', message)
  }
}

/** The error a missing input gives, or undefined when every path exists (checked before anything is sent). */
export async function missingInput(paths: readonly string[]): Promise<string | undefined> {
  for (const p of paths) {
    try {
      await stat(p)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      return code === 'ENOENT'
        ? `--file ${p}: no such file or directory`
        : `--file ${p}: ${(err as Error).message}`
    }
  }
  return undefined
}

interface Local {
  path: string
  abs: string
  mode: number
  size: number
}

async function listFiles(paths: readonly string[]): Promise<Local[]> {
  const out: Local[] = []
  const names = new Set<string>()
  const visit = async (abs: string, rel: string): Promise<void> => {
    const st = await stat(abs)
    if (st.isDirectory()) {
      for (const n of (await readdir(abs)).sort()) {
        const child = join(abs, n)
        const l = await lstat(child)
        // Links to directories are not followed (no cycles); links to files are.
        if (l.isSymbolicLink() && (await stat(child).catch(() => undefined))?.isDirectory()) continue
        await visit(child, `${rel}/${n}`)
      }
    } else if (st.isFile()) {
      if (names.has(rel)) throw new InputFileError(`two input files would be staged as ${rel}`)
      names.add(rel)
      out.push({ path: rel, abs, mode: st.mode & 0o777, size: st.size })
    }
  }
  for (const p of paths) {
    const err = await missingInput([p])
    if (err !== undefined) throw new InputFileError(err)
    const abs = resolve(p)
    const name = basename(abs)
    if (name === '' || name === '.' || name === '..')
      throw new InputFileError(`--file ${p}: has no base name`)
    await visit(abs, name)
  }
  return out
}

async function hashFile(path: string): Promise<ReturnType<ChunkHasher['digest']>> {
  const h = new ChunkHasher(FILE_CHUNK_BYTES)
  for await (const c of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(c as Buffer)
  return h.digest()
}

/** Bytes uploaded by the last prepareInputs calls of this process (tests, figures). */
export const uploadStats = { files: 0, bytes: 0, skipped: 0 }

/** A step of preparing a job's input files (Job's `inputs` event; the CLI shows it in place of the bar). */
export interface InputFileStep {
  /** The file as the job names it (its path under its staged base name). */
  file: string
  index: number
  count: number
  bytes: number
  step: 'hashing' | 'uploading' | 'present'
}

/**
 * Hashes and uploads (where the daemon lacks them) the files under `paths`; returns the manifest.
 * `onStep` hears each file's steps (a 200 MB file takes seconds before anything is submitted).
 */
export async function prepareInputs(
  client: DaemonClient,
  paths: readonly string[],
  onStep?: (s: InputFileStep) => void,
): Promise<FileEntry[]> {
  const files = await listFiles(paths)
  const entries: FileEntry[] = []
  const uploaded = new Set<string>()
  for (const [index, f] of files.entries()) {
    const step = (s: InputFileStep['step'], bytes: number) => {
      try {
        onStep?.({ file: f.path, index, count: files.length, bytes, step: s })
      } catch {
        // A display's failure is not the job's.
      }
    }
    step('hashing', f.size)
    const list = await hashFile(f.abs)
    let chunks: string | undefined
    if (list.size > FILE_CHUNK_BYTES) {
      const { hash } = await client.request<{ hash: string }>('POST', '/v1/blobs', encodeChunkList(list))
      chunks = hash
    }
    if (!uploaded.has(list.sha256)) {
      uploaded.add(list.sha256)
      const { have } = await client.request<{ have: boolean }>('GET', `/v1/files/${list.sha256}`)
      step(have ? 'present' : 'uploading', list.size)
      if (have) uploadStats.skipped++
      else {
        await client.upload(`/v1/files/${list.sha256}`, createReadStream(f.abs), list.size)
        uploadStats.files++
        uploadStats.bytes += list.size
      }
    }
    entries.push({
      path: f.path,
      size: list.size,
      sha256: list.sha256,
      mode: f.mode,
      ...(chunks ? { chunks } : {}),
    })
  }
  return entries
}

/** Whether an output name is a plain relative path (the owner checks too). */
function plain(name: string): boolean {
  return name.length > 0 && name.split('/').every((s) => s !== '' && s !== '.' && s !== '..')
}

/** Where an output of a task goes: `dir` with `{}` replaced by the task's input line, then the name. */
export function outputPath(dirTemplate: string, input: string | undefined, name: string): string {
  const dir = dirTemplate.includes('{}')
    ? dirTemplate.split('{}').join(safeSegment(input ?? ''))
    : dirTemplate
  return join(dir, ...name.split('/'))
}

/** An input line as a path segment: slashes and NULs replaced, never `.` or `..` or empty. */
function safeSegment(s: string): string {
  const t = s.replace(/[/\\\0]/g, '_').slice(0, 200)
  return t === '' || t === '.' || t === '..' ? `_${t}` : t
}

/** Streams one stored file from the daemon to `to` (through a temporary name). */
export async function downloadFile(client: DaemonClient, file: OutputFile, to: string): Promise<void> {
  await mkdir(dirname(to), { recursive: true })
  const tmp = `${to}.gridnode-${process.pid}-${Math.random().toString(36).slice(2)}`
  const res = await client.fetch('GET', `/v1/files/${file.sha256}/content`)
  try {
    await pipeline(
      Readable.fromWeb(res.body as import('node:stream/web').ReadableStream),
      createWriteStream(tmp),
    )
    await rename(tmp, to)
  } catch (err) {
    await rm(tmp, { force: true })
    throw err
  }
}

export interface OutputResult {
  index: number
  outputs?: OutputFile[]
}

/**
 * Writes outputs as results arrive. `inputs[index]` fills `{}` in the
 * directory. Errors (a path two tasks write, a failed download) are kept per
 * task in `errors` and reported through `onError`.
 */
export class OutputWriter {
  private readonly client: DaemonClient
  private readonly dir: string
  private readonly inputs: readonly string[] | undefined
  private readonly written = new Map<string, number>()
  private chain: Promise<void> = Promise.resolve()
  readonly errors: Array<{ index: number; message: string }> = []
  files = 0
  bytes = 0
  onError?: (index: number, message: string) => void

  constructor(client: DaemonClient, dir: string, inputs?: readonly string[]) {
    this.client = client
    this.dir = dir
    this.inputs = inputs
  }

  /** Queues a result's outputs (one download at a time, in arrival order). */
  add(r: OutputResult): void {
    if (!r.outputs || r.outputs.length === 0) return
    const outputs = r.outputs
    this.chain = this.chain.then(() => this.write(r.index, outputs))
  }

  /** Resolves once every queued output is written. */
  idle(): Promise<void> {
    return this.chain
  }

  private fail(index: number, message: string): void {
    this.errors.push({ index, message })
    this.onError?.(index, message)
  }

  private async write(index: number, outputs: OutputFile[]): Promise<void> {
    for (const f of outputs) {
      if (!plain(f.name)) {
        this.fail(index, `output name ${JSON.stringify(f.name)} is not a plain relative path`)
        continue
      }
      const to = outputPath(this.dir, this.inputs?.[index], f.name)
      const other = this.written.get(to)
      if (other !== undefined && other !== index) {
        this.fail(
          index,
          `output ${to} is written by task ${other} and by task ${index}; kept task ${other}'s`,
        )
        continue
      }
      this.written.set(to, index)
      try {
        await downloadFile(this.client, f, to)
        this.files++
        this.bytes += f.size
      } catch (err) {
        this.fail(index, `output ${f.name}: ${(err as Error).message}`)
      }
    }
  }
}

/** Paths under `root` use the platform separator; for messages. */
export function displayPath(p: string): string {
  return p.split('/').join(sep)
}

/** Sends a file's bytes as a request body (PUT), for DaemonClient.upload. */
export function streamBody(
  url: string,
  auth: string,
  body: NodeJS.ReadableStream,
  size: number,
): Promise<{ status: number; text: string }> {
  return new Promise((resolvePromise, reject) => {
    const req = httpRequest(
      url,
      {
        method: 'PUT',
        headers: { authorization: auth, 'content-type': 'application/octet-stream', 'content-length': size },
      },
      (res) => {
        const chunks: Buffer[] = []
        res.on('data', (c: Buffer) => chunks.push(c))
        res.on('error', reject)
        res.on('end', () =>
          resolvePromise({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }),
        )
      },
    )
    req.on('error', reject)
    body.on('error', (err) => req.destroy(err as Error))
    body.pipe(req)
  })
}
