/**
 * The file flags of `map` and `run`: `--file <path>` (repeatable; a file or a
 * directory staged read-only into each task's working directory under its
 * base name), `--output <glob>` (repeatable; matching files come back),
 * `--output-dir <dir>` (default `.`; `{}` is replaced by the input line) and
 * `--output-limit <size>` (bytes of outputs per task).
 */
import { type Command, InvalidArgumentError } from 'commander'
import { missingInput } from '../src/client/files.ts'
import type { TaskOptions } from '../src/client/grid.ts'
import type { Job } from '../src/client/job.ts'
import { EXIT, ExitError } from './output.ts'

export interface FileFlags {
  file?: string[]
  output?: string[]
  outputDir?: string
  outputLimit?: number
}

const collect = (value: string, previous: string[] | undefined): string[] => [...(previous ?? []), value]

const SIZE_UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }

/** "1048576", "500M", "2G" → bytes. */
export function sizeBytes(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(value.trim())
  const unit = m ? SIZE_UNITS[m[2].toLowerCase()] : undefined
  if (!m || unit === undefined) throw new InvalidArgumentError('expected bytes, or a size like 500M or 2G.')
  return Math.round(Number(m[1]) * unit)
}

export function withFileFlags(cmd: Command): Command {
  return cmd
    .option(
      '--file <path>',
      "stage a file or directory read-only into each task's working directory, under its base name (repeatable)",
      collect,
    )
    .option(
      '--output <glob>',
      "bring back files of each task's working directory that match (repeatable; *, ?, ** work)",
      collect,
    )
    .option(
      '--output-dir <dir>',
      'where outputs are written as they arrive; {} is the input line (default .)',
    )
    .option('--output-limit <size>', 'bytes of outputs one task may bring back (default 1G)', sizeBytes)
}

/** Checks the flags before anything is submitted: a missing --file is a usage error. */
export async function fileOptions(f: FileFlags): Promise<Partial<TaskOptions>> {
  const missing = await missingInput(f.file ?? [])
  if (missing !== undefined) throw new ExitError(EXIT.usage, missing)
  if (f.outputDir !== undefined && (f.output ?? []).length === 0)
    throw new ExitError(EXIT.usage, '--output-dir needs --output <glob>: which files to bring back')
  const o: Partial<TaskOptions> = {}
  if (f.file && f.file.length > 0) o.files = f.file
  if (f.output && f.output.length > 0) {
    o.outputs = f.output
    o.outputDir = f.outputDir ?? '.'
    if (f.outputLimit !== undefined) o.outputFilesMaxBytes = f.outputLimit
  }
  return o
}

/** Reports output files that could not be written (on stderr); answers whether all went well. */
export function watchOutputs(job: Job<unknown>, o: Partial<TaskOptions>, inputs: readonly string[]) {
  if (o.outputDir === undefined) return { ok: () => true }
  const writer = job.writeOutputs(o.outputDir, inputs)
  writer.onError = (index, message) => process.stderr.write(`gridnode: task ${index}: ${message}\n`)
  return { ok: () => writer.errors.length === 0 }
}
