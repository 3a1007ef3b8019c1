/**
 * A task's files: inputs staged read-only into its working directory before
 * it runs, and outputs collected from it after it ends (files matching the
 * job's globs, copied into the blob store by hash).
 *
 * Outside a sandbox a task runs as the daemon's user (often root), for whom a
 * read-only mode is advice: a hard link to the cached blob let `echo x >
 * input.txt` rewrite the blob itself. So tasks never see the blob store's own
 * inodes. Each input is staged from a shadow copy, `<dataDir>/inputs/<id>`,
 * made once per node (a reflink where the file system has them, a full copy
 * on ext4), verified against its SHA-256 name, and hard-linked into every
 * task that uses it while it lives (SHADOW_LINGER_MS after its last task).
 * The shadow's (dev, ino, size, mtime, ctime, mode, nlink) are recorded when
 * it is made and compared before every link to it and after every task that
 * had it: a change (ctime catches a chmod back and a reset mtime) fails every task
 * that held it since it was last seen intact, and the shadow is dropped, so
 * the next task gets a fresh copy of the intact blob. In a sandbox inputs are
 * read-only bind mounts of the blob files (inputBinds): EROFS for anyone.
 */
import { createHash, randomBytes } from 'node:crypto'
import { type BigIntStats, constants, createReadStream } from 'node:fs'
import { chmod, copyFile, link, lstat, mkdir, readdir, rename, rm, statfs } from 'node:fs/promises'
import { basename, dirname, join, relative, sep } from 'node:path'
import type { OutputFile, OutputSpec, TaskOutcome } from '../domain/types.ts'
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

/** Where shadows live when the caller names no place: beside the task's directory. */
export const SHADOW_DIR = '.inputs'
/** A shadow no task holds is removed this long after its last task ended. */
export const SHADOW_LINGER_MS = 60_000

/**
 * What a write, truncate, chmod or utimes through any link changes. ctime and
 * nlink also move when a link is made or removed: the daemon's own links are
 * made and removed under the shadow's lock with a stat on either side, so
 * only a task's acts move them unexplained; a change of ctime or nlink alone
 * (a task that removed its input, or set its mtime back) is settled by hashing.
 */
interface Ident {
  dev: bigint
  ino: bigint
  size: bigint
  mtimeNs: bigint
  ctimeNs: bigint
  mode: bigint
  nlink: bigint
}

function identOf(st: BigIntStats): Ident {
  return {
    dev: st.dev,
    ino: st.ino,
    size: st.size,
    mtimeNs: st.mtimeNs,
    ctimeNs: st.ctimeNs,
    mode: st.mode,
    nlink: st.nlink,
  }
}

/** Same bytes as far as metadata can tell (ctime and nlink aside). */
function sameContent(a: Ident, b: Ident): boolean {
  return (
    a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeNs === b.mtimeNs && a.mode === b.mode
  )
}

function sameIdent(a: Ident, b: Ident): boolean {
  return sameContent(a, b) && a.ctimeNs === b.ctimeNs && a.nlink === b.nlink
}

interface Shadow {
  path: string
  /** The blob's SHA-256 when the source is a blob store file (the bytes are checked against it). */
  hash: string | undefined
  ident: Ident
  /** Tasks holding it now. */
  holders: Set<StagedFiles>
  /** Tasks that held it at some moment since it was last seen intact. */
  suspects: Set<StagedFiles>
  /** Found changed: off the table (its file removed), and how many tasks may have done it. */
  changed?: { suspects: number }
  linger?: ReturnType<typeof setTimeout>
  /** Serializes the daemon's own links and unlinks with the stats around them. */
  lock: Promise<unknown>
}

/** Live shadows by path (one process may run several executors: paths include their data dirs). */
const shadows = new Map<string, Shadow>()
const making = new Map<string, Promise<Shadow>>()

/** Counters for tests and the bench: shadows made (copies), found changed, settled by hashing. */
export const shadowStats = { made: 0, changed: 0, hashed: 0 }

async function currentIdent(path: string): Promise<Ident | undefined> {
  try {
    return identOf(await lstat(path, { bigint: true }))
  } catch {
    return undefined
  }
}

function locked<T>(s: Shadow, fn: () => Promise<T>): Promise<T> {
  const run = s.lock.then(fn, fn)
  s.lock = run.catch(() => undefined)
  return run
}

/** Marks a shadow changed: it leaves the table and its file goes (tasks holding it keep their links). */
function condemn(s: Shadow): void {
  if (s.changed !== undefined) return
  s.changed = { suspects: s.suspects.size }
  shadowStats.changed++
  if (shadows.get(s.path) === s) shadows.delete(s.path)
  if (s.linger !== undefined) clearTimeout(s.linger)
  void rm(s.path, { force: true }).catch(() => undefined)
}

/** The blob name's hash when `source` is a blob store file, to verify the copy against. */
function blobHashOf(source: string): string | undefined {
  return /^([0-9a-f]{64})\.mjs$/.exec(basename(source))?.[1]
}

async function sha256File(path: string): Promise<string> {
  const h = createHash('sha256')
  for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 })) h.update(chunk as Buffer)
  return h.digest('hex')
}

/**
 * Whether the shadow is as it was made (under its lock): its metadata, or, when only
 * ctime or nlink moved, its bytes against its hash. Condemns it when not.
 */
async function intact(s: Shadow): Promise<boolean> {
  if (s.changed !== undefined) return false
  const now = await currentIdent(s.path)
  if (now !== undefined && sameIdent(now, s.ident)) return true
  if (now !== undefined && sameContent(now, s.ident) && s.hash !== undefined) {
    shadowStats.hashed++
    if ((await sha256File(s.path)) === s.hash) {
      s.ident = now
      return true
    }
  }
  condemn(s)
  return false
}

/** One of the daemon's own link operations on a shadow: checked before, new ctime and nlink taken after. */
async function linkOp(s: Shadow, op: () => Promise<void>): Promise<boolean> {
  if (!(await intact(s))) return false
  await op()
  const after = await currentIdent(s.path)
  // Anything but ctime and nlink moving across the operation is someone else's write.
  if (after === undefined || !sameContent(after, s.ident)) {
    condemn(s)
    return false
  }
  s.ident = after
  return true
}

async function makeShadow(source: string, path: string, mode: number): Promise<Shadow> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 })
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`
  const hash = blobHashOf(source)
  try {
    // A reflink (no bytes copied) on btrfs, XFS and the like; a plain copy elsewhere.
    await copyFile(source, tmp, constants.COPYFILE_FICLONE)
    if (hash !== undefined) {
      const got = await sha256File(tmp)
      if (got !== hash)
        throw new Error(`cached input ${hash.slice(0, 12)} is corrupt: its bytes hash to ${got.slice(0, 12)}`)
    }
    await chmod(tmp, mode)
    await rename(tmp, path)
  } catch (err) {
    await rm(tmp, { force: true }).catch(() => undefined)
    throw err
  }
  // After the rename (which sets ctime on ext4); no task holds a link yet.
  const s: Shadow = {
    path,
    hash,
    ident: identOf(await lstat(path, { bigint: true })),
    holders: new Set(),
    suspects: new Set(),
    lock: Promise.resolve(),
  }
  shadowStats.made++
  shadows.set(path, s)
  return s
}

/** Links an intact shadow of `source` (at `path`, made if need be: one copy however many ask) to `to`. */
async function linkShadow(source: string, path: string, mode: number, to: string): Promise<Shadow> {
  for (;;) {
    let s = shadows.get(path)
    if (s === undefined) {
      let p = making.get(path)
      if (p === undefined) {
        p = makeShadow(source, path, mode).finally(() => making.delete(path))
        making.set(path, p)
      }
      s = await p
    }
    const shadow = s
    const linked = await locked(shadow, () =>
      linkOp(shadow, async () => {
        await link(shadow.path, to)
      }),
    )
    if (linked) {
      // Intact at this instant: only those holding it now (and this task) can change it from here on.
      shadow.suspects = new Set(shadow.holders)
      return shadow
    }
  }
}

/** How a task's staged inputs fared: undefined when intact, else which one changed. */
export interface InputChange {
  /** The input's path in the task's directory. */
  path: string
  /** How many tasks held that input since it was last seen intact (1: this one changed it). */
  suspects: number
}

/**
 * The inputs one task holds. Call check() once the task has ended (all its
 * processes gone), before its directory is removed: it compares each shadow
 * with what it was, takes the task's links away and lets go of them;
 * release() lets go without looking (a run that never started).
 */
export class StagedFiles {
  private readonly held = new Map<Shadow, { path: string; links: string[] }>()
  private done = false

  /** @internal */
  hold(s: Shadow, path: string, to: string): void {
    const h = this.held.get(s)
    if (h === undefined) this.held.set(s, { path, links: [to] })
    else h.links.push(to)
    s.holders.add(this)
    s.suspects.add(this)
    if (s.linger !== undefined) {
      clearTimeout(s.linger)
      s.linger = undefined
    }
  }

  async check(): Promise<InputChange | undefined> {
    if (this.done) return undefined
    let change: InputChange | undefined
    for (const [s, h] of this.held) {
      try {
        await locked(s, () =>
          linkOp(s, async () => {
            // The task's links go now, under the lock (not with its directory): only links that still are this inode.
            for (const to of h.links) {
              const st = await lstat(to, { bigint: true }).catch(() => undefined)
              if (st !== undefined && st.ino === s.ident.ino && st.dev === s.ident.dev)
                await rm(to, { force: true })
            }
          }),
        )
      } catch {
        // Could not be checked: not trusted either.
        condemn(s)
      }
      if (s.changed === undefined) s.suspects = new Set([...s.holders].filter((x) => x !== this))
      else change ??= { path: h.path, suspects: s.changed.suspects }
    }
    this.release()
    return change
  }

  release(): void {
    if (this.done) return
    this.done = true
    for (const s of this.held.keys()) {
      s.holders.delete(this)
      if (s.changed !== undefined) continue
      // Seen intact just now (check) or not looked at (release: a run that never started).
      s.suspects.delete(this)
      if (s.holders.size === 0) {
        s.linger = setTimeout(() => {
          // Under the lock, so a task about to link it finds it gone and makes a new one.
          void locked(s, async () => {
            if (s.holders.size > 0 || s.changed !== undefined || shadows.get(s.path) !== s) return
            s.changed = { suspects: 0 }
            shadows.delete(s.path)
            await rm(s.path, { force: true })
          }).catch(() => undefined)
        }, SHADOW_LINGER_MS)
        s.linger.unref()
      }
    }
  }
}

/** The outcome of a task whose input changed under it (a task's own act: never a crash of the daemon). */
export function inputChangedOutcome(change: InputChange, durationMs: number): TaskOutcome {
  if (change.suspects <= 1)
    return {
      status: 'threw',
      error: `task changed its read-only input ${change.path}; inputs are read-only, write outputs to new files`,
      durationMs,
    }
  return {
    status: 'crashed',
    error:
      `input ${change.path} was changed while this task ran, by one of the ${change.suspects} tasks on this node that had it ` +
      '(inputs are read-only, write outputs to new files); this run is void, the input is staged afresh for the next',
    durationMs,
  }
}

/**
 * Puts every input at `<dir>/<path>`: a hard link to the shadow copy of its
 * blob (read-only; executable when its mode says so). The blob file itself is
 * only read. `shadowDir` must be on the file system of `dir` (the daemon's:
 * shadowRoot of scratch.ts). Returns the hold to check() after the task.
 */
export async function stageInputs(
  dir: string,
  inputs: readonly StagedInput[],
  shadowDir = join(dirname(dir), SHADOW_DIR),
): Promise<StagedFiles> {
  const staged = new StagedFiles()
  try {
    for (const f of inputs) {
      if (!isPlainRelative(f.path)) throw new Error(`input path ${JSON.stringify(f.path)} is not plain`)
      const to = join(dir, ...f.path.split('/'))
      await mkdir(dirname(to), { recursive: true })
      const exec = (f.mode & 0o111) !== 0
      const id = createHash('sha256').update(f.source).digest('hex').slice(0, 32)
      const path = join(shadowDir, `${id}${exec ? 'x' : 'r'}`)
      try {
        staged.hold(await linkShadow(f.source, path, exec ? 0o555 : 0o444, to), f.path, to)
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code
        if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK') throw err
        // No link possible here (another file system, too many links): a private copy, only this task's to spoil.
        await copyFile(f.source, to)
        await chmod(to, exec ? 0o555 : 0o444)
      }
    }
  } catch (err) {
    staged.release()
    throw err
  }
  return staged
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

/** Disk a node keeps free whatever outputs come in (its job store and logs need some). */
export const OUTPUT_DISK_RESERVE = 1024 * 1024 * 1024

/**
 * The most output bytes one task may bring into this node's blob store, whatever its job says:
 * a quarter of the store's quota, and what the disk has free above OUTPUT_DISK_RESERVE. Outputs
 * are copied in whole (a sparse file of 1 GiB takes 1 GiB): a job's own `maxBytes` is the
 * owner's word, and a member's job without one filled a victim's disk past its blob quota.
 */
export async function outputRoom(blobs: BlobStore): Promise<number> {
  let free = Number.POSITIVE_INFINITY
  try {
    const st = await statfs(blobs.dir)
    free = Number(st.bavail) * Number(st.bsize) - OUTPUT_DISK_RESERVE
  } catch {
    // No statfs here: the quota alone.
  }
  return Math.max(0, Math.min(Math.floor(blobs.quota / 4), free))
}

/**
 * Copies the files of `dir` that match the spec's globs (staged inputs left
 * out) into the blob store. Throws OutputLimitError when they come to more
 * than `maxBytes` (0: no limit), more than the node takes (outputRoom), or
 * more files than `maxFiles`.
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
  const room = await outputRoom(blobs)
  for (const n of names) {
    total += (await lstat(join(dir, n))).size
    if (spec.maxBytes > 0 && total > spec.maxBytes)
      throw new OutputLimitError(
        `outputs over the job's limit of ${spec.maxBytes} bytes (at ${n}: ${total} bytes so far)`,
      )
    if (total > room)
      throw new OutputLimitError(
        `outputs over what this node takes from one task, ${room} bytes (a quarter of its blob cache, within its free disk; at ${n}: ${total} bytes so far)`,
      )
  }
  const out: OutputFile[] = []
  for (const n of names) {
    const { sha256, size } = await blobs.importFile(join(dir, ...n.split('/')))
    out.push({ name: n, size, sha256 })
  }
  return out
}
