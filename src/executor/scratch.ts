/**
 * Scratch directories: one per task run, `<dataDir>/scratch/<name>`, removed
 * after the run and swept whole at start (a crash leaves some behind).
 *
 * Names are derived from (job, index, attempt) through a hash, so distinct
 * job ids never share a directory (`a/b` and `a_b` used to): a readable
 * prefix of the job id, then 16 hex digits of SHA-256 of the id itself.
 */
import { createHash } from 'node:crypto'
import { mkdirSync, rmSync } from 'node:fs'
import { mkdir, readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { removeTree } from './remove-tree.ts'

export const SCRATCH_DIR = 'scratch'

export function scratchRoot(dataDir: string): string {
  return join(dataDir, SCRATCH_DIR)
}

/** Shadow copies of input blobs that tasks' inputs are hard links to (files.ts); swept with scratch. */
export const SHADOW_ROOT = 'inputs'

export function shadowRoot(dataDir: string): string {
  return join(dataDir, SHADOW_ROOT)
}

/** The directory name of one run: `<safe prefix>-<hash of job id>-<index>-<attempt>`. */
export function scratchName(task: { job: string; index: number; attempt: number }): string {
  const prefix = task.job.replace(/[^A-Za-z0-9._-]/g, '_').slice(0, 40)
  const hash = createHash('sha256').update(task.job).digest('hex').slice(0, 16)
  return `${prefix}-${hash}-${task.index}-${task.attempt}`
}

export function scratchPath(dataDir: string, task: { job: string; index: number; attempt: number }): string {
  return join(scratchRoot(dataDir), scratchName(task))
}

/**
 * Removes every scratch directory and every input shadow (call at start,
 * before any task runs): returns how many directories were left over from an earlier run.
 */
export async function sweepScratch(dataDir: string): Promise<number> {
  const root = scratchRoot(dataDir)
  let names: string[]
  try {
    names = await readdir(root)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') names = []
    else throw err
  }
  await Promise.all(names.map((n) => removeTree(join(root, n))))
  await removeTree(shadowRoot(dataDir))
  await mkdir(root, { recursive: true, mode: 0o700 })
  return names.length
}

/** The daemon process's own cwd, under its data dir. */
export const DAEMON_CWD = 'cwd'

/**
 * Makes `<dataDir>/cwd` afresh, empty and read-only (0555), and returns it: the
 * daemon enters it at start, so a function task on a worker thread (which
 * shares the daemon's cwd: threads cannot have their own) never writes into
 * the directory the daemon was started from. A relative write there fails
 * (EACCES) unless the daemon runs as root; then it lands there and goes at
 * the next start. Tasks that need a working directory declare files or
 * outputs and get one of their own.
 */
export function freshDaemonCwd(dataDir: string): string {
  const dir = join(dataDir, DAEMON_CWD)
  rmSync(dir, { recursive: true, force: true })
  mkdirSync(dir, { mode: 0o555 })
  return dir
}
