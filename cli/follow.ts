/**
 * Follows a job to its end for `map`, `run` and `results --wait`: prints its
 * results as they come (job-output.ts), shows the progress bar on a
 * terminal, cancels the job on Ctrl-C (a second Ctrl-C leaves at once), and
 * answers the exit code: 0 every task succeeded, 1 some failed or the job
 * was cancelled (with a summary on stderr).
 */
import { constants, createWriteStream } from 'node:fs'
import { access, stat } from 'node:fs/promises'
import { dirname, sep } from 'node:path'
import type { Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import type { Job } from '../src/client/job.ts'
import { globToRegExp } from '../src/executor/files.ts'
import { type OutputMode, ResultPrinter } from './job-output.ts'
import { took } from './job-view.ts'
import { EXIT, ExitError } from './output.ts'
import { progressWanted, showInputSteps, showProgress } from './progress-bar.ts'

export interface FollowOptions {
  json?: boolean
  mode: OutputMode
  /** Write results to this file instead of stdout. */
  outFile?: string
  lines?: number[]
  /** Cancel the job on Ctrl-C (true for jobs this command submitted). */
  cancelOnInterrupt: boolean
  /** Show the bar on a terminal (default true; a finished job has nothing to show). */
  progress?: boolean
  /** Command jobs: the stdout cap in bytes, named when a task's output was cut. */
  maxOutput?: number
  /** `--wait-for-fit`: a job no node can fit for this long is cancelled (exit 1). Default: wait. */
  waitForFitMs?: number
  /** `--output` globs: one no task's files matched is said on stderr once the job has ended. */
  outputGlobs?: string[]
}

export async function followJob(job: Job<unknown>, o: FollowOptions): Promise<number> {
  const out = await openOut(o.outFile)
  const wanted = o.progress !== false && progressWanted(o.json)
  // Until the job is submitted, what its input files are doing; a submission problem (module not
  // found, bad option) is then one clear line, before any bar is drawn.
  const inputsShown = showInputSteps(job, wanted)
  try {
    await job.id
  } finally {
    inputsShown()
  }
  const display = showProgress(job, wanted)
  const printer = new ResultPrinter({
    json: Boolean(o.json),
    mode: o.mode,
    out,
    lines: o.lines,
    log: display.log,
    maxOutput: o.maxOutput,
  })
  let interrupted = false
  const onSigint = () => {
    if (interrupted || !o.cancelOnInterrupt) {
      display.stop()
      process.exit(130)
    }
    interrupted = true
    display.log('gridnode: cancelling the job (Ctrl-C again to leave at once)')
    job.cancel().catch((err: Error) => display.log(`gridnode: cannot cancel: ${err.message}`))
  }
  process.on('SIGINT', onSigint)
  const fit = watchBlocked(job, await job.id, o, display.log, out)
  const globs = (o.outputGlobs ?? []).map((glob) => ({ glob, re: globToRegExp(glob), matched: false }))
  let succeeded = 0
  let status: string
  try {
    for await (const r of job) {
      printer.add(r)
      if (!r.error) succeeded++
      for (const f of r.outputs ?? []) for (const g of globs) g.matched ||= g.re.test(f.name)
    }
    status = await job.done()
  } finally {
    fit.stop()
    process.off('SIGINT', onSigint)
    display.stop()
    printer.end()
    if (out !== process.stdout) {
      out.end()
      await finished(out)
    }
  }
  const id = await job.id
  if (status !== 'cancelled' && succeeded > 0) {
    // A glob with a typo, or files written elsewhere than the task's working directory.
    for (const g of globs.filter((g) => !g.matched))
      process.stderr.write(`gridnode: no task produced a file matching --output '${g.glob}'\n`)
  }
  const p = job.progress
  const total = p?.total ?? printer.failed
  if (status === 'cancelled' && fit.gaveUp !== undefined) {
    process.stderr.write(
      `gridnode: job ${id} was cancelled: no node could fit it within --wait-for-fit (${fit.gaveUp})\n`,
    )
    return EXIT.failed
  }
  if (status === 'cancelled') {
    const finishedCount = (p?.done ?? 0) + (p?.failed ?? 0)
    process.stderr.write(
      `gridnode: job ${id} was cancelled: ${finishedCount} of ${total} tasks had finished\n`,
    )
    return EXIT.failed
  }
  if (printer.failed > 0) {
    process.stderr.write(
      `gridnode: ${printer.failed} of ${total} tasks failed (job ${id}; \`gridnode results ${id} --json\` lists them)\n`,
    )
    return EXIT.failed
  }
  return EXIT.ok
}

/**
 * Checks, before a job is submitted, that `--out <file>` can be written: an existing file that is
 * writable, or a new one in a writable directory. Refused: exit 2 with one line.
 */
export async function checkOutFile(path: string | undefined): Promise<void> {
  if (path === undefined || path === '') return
  let why: string | undefined
  try {
    const s = await stat(path)
    if (s.isDirectory()) why = 'it is a directory'
    else why = await notWritable(path, 'it is not writable')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    why = code === 'ENOENT' || code === 'ENOTDIR' ? await dirProblem(dirname(path)) : (err as Error).message
  }
  if (why !== undefined) throw new ExitError(EXIT.usage, `cannot write --out ${path}: ${why}`)
}

/**
 * Checks, before a job is submitted, that `--output-dir` can be made: its part before any `{}` is
 * a writable directory, or the nearest part of it that exists is one. Refused: exit 2, one line.
 */
export async function checkOutputDir(dir: string | undefined, flag = '--output-dir'): Promise<void> {
  if (dir === undefined) return
  const parts = dir.split(/[/\\]/)
  const templated = parts.findIndex((p) => p.includes('{}'))
  const base = templated < 0 ? dir : parts.slice(0, templated).join(sep) || (templated === 0 ? '.' : sep)
  const why = await dirProblem(base, true)
  if (why !== undefined) throw new ExitError(EXIT.usage, `cannot write ${flag} ${dir}: ${why}`)
}

/** Why files cannot be made in `dir` (or, with `mayMake`, in the directories it would be made of). */
async function dirProblem(dir: string, mayMake = false): Promise<string | undefined> {
  try {
    const s = await stat(dir)
    if (!s.isDirectory()) return `${dir} is not a directory`
    return await notWritable(dir, `directory ${dir} is not writable`)
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const parent = dirname(dir)
    // ENOTDIR: a file on the way; the walk up finds it and says so.
    if (parent !== dir && (code === 'ENOTDIR' || (code === 'ENOENT' && mayMake)))
      return dirProblem(parent, mayMake)
    return code === 'ENOENT' ? `directory ${dir} does not exist` : (err as Error).message
  }
}

async function notWritable(path: string, why: string): Promise<string | undefined> {
  try {
    await access(path, constants.W_OK)
    return undefined
  } catch {
    return why
  }
}

export async function openOut(path: string | undefined): Promise<Writable> {
  if (!path) return process.stdout
  const stream = createWriteStream(path)
  await new Promise<void>((resolve, reject) => {
    stream.once('open', () => resolve())
    stream.once('error', (err) =>
      reject(new ExitError(EXIT.usage, `cannot write --out ${path}: ${(err as Error).message}`)),
    )
  })
  return stream
}

/**
 * A job no node can fit says so at once: one line on stderr (and a
 * `{"blocked": reason}` line with --json), again when the reason changes, and
 * when it clears. With --wait-for-fit, a job still blocked after that long is
 * cancelled.
 */
function watchBlocked(
  job: Job<unknown>,
  id: string,
  o: FollowOptions,
  log: (line: string) => void,
  out: Writable,
): { stop(): void; gaveUp: string | undefined } {
  let timer: NodeJS.Timeout | undefined
  let said = ''
  const state = {
    gaveUp: undefined as string | undefined,
    stop: () => {
      clearTimeout(timer)
      job.off('blocked', onBlocked)
    },
  }
  const onBlocked = (reason: string) => {
    if (reason === said) return
    if (o.json) out.write(`${JSON.stringify({ blocked: reason })}\n`)
    if (reason === '') {
      log(`gridnode: job ${id} can run now (a node that fits it is here)`)
      clearTimeout(timer)
      timer = undefined
    } else {
      const then =
        o.waitForFitMs === undefined
          ? 'waiting for a node that fits (--wait-for-fit <duration> gives up)'
          : `waiting up to ${took(o.waitForFitMs)} for a node that fits`
      log(`gridnode: job ${id} cannot run yet: ${reason}; ${then}`)
      if (o.waitForFitMs !== undefined && timer === undefined) {
        timer = setTimeout(() => {
          state.gaveUp = `${took(o.waitForFitMs ?? 0)}: ${said}`
          job.cancel().catch((err: Error) => log(`gridnode: cannot cancel: ${err.message}`))
        }, o.waitForFitMs)
      }
    }
    said = reason
  }
  job.on('blocked', onBlocked)
  if (job.blocked !== '') onBlocked(job.blocked)
  return state
}
