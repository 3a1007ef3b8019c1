/**
 * A task's files: inputs staged read-only into its working directory before
 * it runs (hard links to the blob cache, copies across file systems; in a
 * sandbox, read-only bind mounts), and outputs collected from it after it
 * ends (files matching the job's globs, copied into the blob store by hash).
 */
import { chmod, copyFile, link, lstat, mkdir, readdir } from 'node:fs/promises'
import { dirname, join, relative, sep } from 'node:path'
import type { OutputFile, OutputSpec } from '../domain/types.ts'
import type { BlobStore } from './blob-store.ts'

/** One input as staged: its relative path, the blob file holding its bytes, its mode. */
export interface StagedInput {
  path: string
  source: string
  mode: number
}

export interface TaskFiles {
  inputs: StagedInput[]
  outputs?: OutputSpec
}

/** Whether a relative path is plain: forward slashes, no empty, `.` or `..` segment. */
export function isPlainRelative(p: string): boolean {
  return p.length > 0 && !p.includes('\0') && p.split('/').every((s) => s !== '' && s !== '.' && s !== '..')
}

/**
 * Puts every input at `<dir>/<path>`: a hard link to its blob (made read-only,
 * executable when its mode says so), or a read-only copy where linking fails.
 */
export async function stageInputs(dir: string, inputs: readonly StagedInput[]): Promise<void> {
  for (const f of inputs) {
    if (!isPlainRelative(f.path)) throw new Error(`input path ${JSON.stringify(f.path)} is not plain`)
    const to = join(dir, ...f.path.split('/'))
    await mkdir(dirname(to), { recursive: true })
    const mode = f.mode & 0o111 ? 0o555 : 0o444
    try {
      // The blob's own inode: read-only for everyone (an executable input makes the cached copy executable too).
      await chmod(f.source, mode)
      await link(f.source, to)
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code
      if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err
      await copyFile(f.source, to)
      await chmod(to, mode)
    }
  }
}

/** Read-only bind mounts for a sandbox: each input's blob file at its path under `work`. */
export function inputBinds(inputs: readonly StagedInput[], work: string): Array<[string, string]> {
  return inputs.map((f) => [f.source, `${work}/${f.path}`])
}

/** A glob as a regular expression over relative paths: `*` and `?` within a segment, `**` across. */
export function globToRegExp(glob: string): RegExp {
  let re = ''
  for (let i = 0; i < glob.length; i++) {
    const c = glob[i]
    if (c === '*') {
      if (glob[i + 1] === '*') {
        i++
        if (glob[i + 1] === '/') {
          i++
          re += '(?:.*/)?'
        } else re += '.*'
      } else re += '[^/]*'
    } else if (c === '?') re += '[^/]'
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&')
  }
  return new RegExp(`^${re}$`)
}

/** Regular files under `dir` (relative paths, forward slashes), symlinks and other kinds skipped. */
async function walk(dir: string, limit: number): Promise<string[]> {
  const out: string[] = []
  const visit = async (d: string): Promise<void> => {
    let names: string[]
    try {
      names = await readdir(d)
    } catch {
      return
    }
    for (const n of names.sort()) {
      if (out.length >= limit) return
      const full = join(d, n)
      const st = await lstat(full)
      if (st.isDirectory()) await visit(full)
      else if (st.isFile()) out.push(relative(dir, full).split(sep).join('/'))
    }
  }
  await visit(dir)
  return out
}

export class OutputLimitError extends Error {}

/**
 * Copies the files of `dir` that match the spec's globs (staged inputs left
 * out) into the blob store. Throws OutputLimitError when they come to more
 * than `maxBytes` (0: no limit) or more files than `maxFiles`.
 */
export async function collectOutputs(
  dir: string,
  spec: OutputSpec,
  staged: readonly StagedInput[],
  blobs: BlobStore,
  maxFiles = 10_000,
): Promise<OutputFile[]> {
  const patterns = spec.globs.map(globToRegExp)
  const inputs = new Set(staged.map((s) => s.path))
  const names = (await walk(dir, maxFiles + 1)).filter(
    (n) => !inputs.has(n) && !n.startsWith('.tmp/') && patterns.some((p) => p.test(n)),
  )
  if (names.length > maxFiles) throw new OutputLimitError(`more than ${maxFiles} output files match`)
  let total = 0
  for (const n of names) {
    total += (await lstat(join(dir, n))).size
    if (spec.maxBytes > 0 && total > spec.maxBytes)
      throw new OutputLimitError(
        `outputs over the job's limit of ${spec.maxBytes} bytes (at ${n}: ${total} bytes so far)`,
      )
  }
  const out: OutputFile[] = []
  for (const n of names) {
    const { sha256, size } = await blobs.importFile(join(dir, ...n.split('/')))
    out.push({ name: n, size, sha256 })
  }
  return out
}
