/**
 * What this machine offers the mesh: CPU slots, memory, load and GPUs, with
 * the `--cpus` and `--gpus` flags applied.
 */

import os from 'node:os'
import { GridnodeError } from '../../errors.ts'
import type { GpuInfo } from '../../scheduler/types.ts'
import { type ProbeGpusOptions, probeGpus } from './nvidia-smi.ts'

/** A command-line flag has a value gridnode cannot use. */
export class BadFlagError extends GridnodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GN_BAD_FLAG', message, options)
  }
}

export type GpusFlag = { mode: 'auto' } | { mode: 'none' } | { mode: 'list'; indexes: number[] }

/** `--gpus`: `auto` (or absent), `none`, or a comma list of nvidia-smi indexes such as `0,2`. */
export function parseGpusFlag(value: string | undefined): GpusFlag {
  if (value === undefined) return { mode: 'auto' }
  const v = value.trim()
  const lower = v.toLowerCase()
  if (lower === 'auto') return { mode: 'auto' }
  if (lower === 'none') return { mode: 'none' }
  const usage = 'expected none, auto, or comma-separated GPU indexes as nvidia-smi numbers them (e.g. 0,2)'
  if (!/^\d+(?:\s*,\s*\d+)*$/.test(v)) {
    throw new BadFlagError(`--gpus ${JSON.stringify(value)}: ${usage}`)
  }
  const indexes: number[] = []
  for (const part of v.split(',')) {
    const n = Number(part.trim())
    if (!Number.isSafeInteger(n)) throw new BadFlagError(`--gpus ${value}: ${part.trim()} is not a GPU index`)
    if (indexes.includes(n)) throw new BadFlagError(`--gpus ${value}: GPU ${n} is listed twice`)
    indexes.push(n)
  }
  return { mode: 'list', indexes }
}

/**
 * Applies `--gpus` to the probed GPUs. A listed index the probe did not find
 * is an error, unless the probe found no GPU at all: then the list declares
 * GPUs the probe cannot see (no nvidia-smi, a container, another vendor).
 */
export function applyGpusFlag(probed: GpuInfo[], flag: GpusFlag): GpuInfo[] {
  if (flag.mode === 'none') return []
  if (flag.mode === 'auto') return probed.slice()
  if (probed.length === 0) {
    return flag.indexes.map((index) => ({ index, name: `GPU ${index} (declared by --gpus)` }))
  }
  const missing = flag.indexes.filter((i) => !probed.some((g) => g.index === i))
  if (missing.length > 0) {
    const have = probed
      .map((g) => g.index)
      .sort((a, b) => a - b)
      .join(', ')
    const noun = probed.length === 1 ? 'GPU' : 'GPUs'
    throw new BadFlagError(`--gpus ${flag.indexes.join(',')}: this machine has ${noun} ${have}`)
  }
  return flag.indexes.map((i) => probed.find((g) => g.index === i)!)
}

export interface ProbedCapacity {
  /** Logical CPUs this process may use (os.availableParallelism()). */
  cores: number
  /** Concurrent CPU tasks offered: `--cpus`, else `cores`. */
  slots: number
  memoryTotalMB: number
  memoryFreeMB: number
  /** 1-minute load average (0 where the OS has none, e.g. Windows). */
  load1: number
  gpus: GpuInfo[]
  /** Why the GPU probe found nothing (nvidia-smi missing, driver error...), or that `--gpus none` was given. */
  gpuNote?: string
}

export interface ProbeCapacityOptions {
  /** `--cpus`: a positive integer. */
  cpus?: number
  /** `--gpus`, unparsed. */
  gpus?: string
  /** Passed to probeGpus (tests point it at a script printing a recorded output). */
  nvidiaSmi?: ProbeGpusOptions
}

const MiB = 1024 * 1024

/** Total memory, bounded by a cgroup limit when there is one. */
function memoryTotalMB(): number {
  const total = os.totalmem()
  const constrained = typeof process.constrainedMemory === 'function' ? process.constrainedMemory() : 0
  const bytes = constrained > 0 && constrained < total ? constrained : total
  return Math.floor(bytes / MiB)
}

/** Memory available to start new work: cgroup-aware where Node supports it, else the OS's free memory. */
function memoryFreeMB(): number {
  const available = typeof process.availableMemory === 'function' ? process.availableMemory() : 0
  const bytes = available > 0 ? available : os.freemem()
  return Math.floor(bytes / MiB)
}

/** Cheap, for periodic refresh of the advert. */
export function sampleLoad(): { memoryFreeMB: number; load1: number } {
  return { memoryFreeMB: memoryFreeMB(), load1: os.loadavg()[0] ?? 0 }
}

export async function probeCapacity(opts: ProbeCapacityOptions = {}): Promise<ProbedCapacity> {
  if (opts.cpus !== undefined && !(Number.isSafeInteger(opts.cpus) && opts.cpus > 0)) {
    throw new BadFlagError(`--cpus ${String(opts.cpus)}: expected a positive whole number of CPU slots`)
  }
  const flag = parseGpusFlag(opts.gpus)
  const cores = os.availableParallelism()
  const base = {
    cores,
    slots: opts.cpus ?? cores,
    memoryTotalMB: memoryTotalMB(),
    ...sampleLoad(),
  }
  if (flag.mode === 'none') return { ...base, gpus: [], gpuNote: 'GPUs disabled by --gpus none' }
  const probed = await probeGpus(opts.nvidiaSmi)
  const gpus = applyGpusFlag(probed.gpus, flag)
  return probed.note === undefined ? { ...base, gpus } : { ...base, gpus, gpuNote: probed.note }
}
