/**
 * Flag parsers shared by the job commands. Each throws commander's
 * InvalidArgumentError, which commander reports as one line naming the flag
 * (and main.ts turns into exit code 2).
 */
import { InvalidArgumentError } from 'commander'
import type { TaskOptions } from '../src/client/grid.ts'
import { MAX_COMMAND_OUTPUT_BYTES } from '../src/domain/types.ts'

export function wholeNumber(value: string): number {
  if (!/^\d+$/.test(value)) throw new InvalidArgumentError('expected a whole number ≥ 0.')
  return Number(value)
}

/** A whole number ≥ 1; one message for every bad value ("abc", "0", "-1", "1.5"). */
export function positiveNumber(value: string): number {
  if (!/^\d+$/.test(value) || Number(value) < 1)
    throw new InvalidArgumentError('expected a whole number ≥ 1.')
  return Number(value)
}

const MEMORY_UNITS: Record<string, number> = { '': 1, m: 1, mb: 1, mib: 1, g: 1024, gb: 1024, gib: 1024 }

/** "512", "512M", "2G" → MB. */
export function memoryMB(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim())
  const unit = m ? MEMORY_UNITS[m[2].toLowerCase()] : undefined
  if (!m || unit === undefined) throw new InvalidArgumentError('expected MB, or a size like 512M or 2G.')
  return Math.round(Number(m[1]) * unit)
}

const BYTE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  m: 1 << 20,
  mb: 1 << 20,
  mib: 1 << 20,
}
/** The largest --max-output: stdout and stderr, each up to the cap, must fit in one 8 MiB result. */
export const MAX_OUTPUT_BYTES = MAX_COMMAND_OUTPUT_BYTES

/** "4096", "64K", "2M" → bytes (at most 3M). */
export function byteSize(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim())
  const unit = m ? BYTE_UNITS[m[2].toLowerCase()] : undefined
  if (!m || unit === undefined || Number(m[1]) * unit < 1)
    throw new InvalidArgumentError('expected bytes, or a size like 64K or 2M (at most 3M).')
  const n = Math.round(Number(m[1]) * unit)
  if (n > MAX_OUTPUT_BYTES)
    throw new InvalidArgumentError('expected at most 3M (a result holds at most 8 MiB).')
  return n
}

const TIME_UNITS: Record<string, number> = {
  ms: 1,
  '': 1000,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
}

/** "30" (seconds), "500ms", "30s", "5m", "1h" → ms. */
export function durationMs(value: string): number {
  const m = /^(\d+(?:\.\d+)?)\s*([a-z]*)$/i.exec(value.trim())
  const unit = m ? TIME_UNITS[m[2].toLowerCase()] : undefined
  if (!m || unit === undefined)
    throw new InvalidArgumentError('expected seconds, or a duration like 500ms, 30s, 5m, 1h or 7d.')
  return Math.round(Number(m[1]) * unit)
}

/** The resource and retry flags of `map` and `run`. */
export interface TaskFlags {
  cpu?: number
  gpu?: number
  memory?: number
  timeout?: number
  retries?: number
  /** Not a task option: how long `map`/`run` wait for a node that fits before cancelling (ms). */
  waitForFit?: number
}

export function taskOptions(f: TaskFlags): TaskOptions {
  return { cpu: f.cpu, gpu: f.gpu, memoryMB: f.memory, timeoutMs: f.timeout, retries: f.retries }
}

/** Adds the resource and retry flags to a command. */
export function withTaskFlags<C extends { option(flags: string, d: string, fn: (v: string) => unknown): C }>(
  cmd: C,
): C {
  return cmd
    .option('--cpu <n>', 'CPU slots per task (default 1)', positiveNumber)
    .option('--gpu <n>', 'whole GPUs per task (default 0)', wholeNumber)
    .option('--memory <size>', 'memory per task: MB, or 512M, 2G (default: no reservation)', memoryMB)
    .option(
      '--timeout <duration>',
      'time limit per task: seconds, or 500ms, 30s, 5m (default none)',
      durationMs,
    )
    .option(
      '--retries <n>',
      'run a task that threw or timed out again, up to n times (default 0)',
      wholeNumber,
    )
    .option(
      '--wait-for-fit <duration>',
      'give up (cancel, exit 1) when no node can fit the tasks for this long (default: wait)',
      durationMs,
    )
}
