/**
 * GPU discovery through `nvidia-smi`. The parser is pure and is tested on
 * recorded outputs (test/fixtures/nvidia-smi/); `probeGpus` runs the binary.
 *
 * Rules (DESIGN.md, "Facts about GPUs"):
 * - check the exit code first: on failure nvidia-smi prints its error to
 *   stdout and exits non-zero (9, 18, 255...);
 * - "No devices were found" means zero GPUs;
 * - `[N/A]`, `[Not Supported]` and any other `[...]` placeholder are missing
 *   values (undefined), never 0;
 * - read `memory.free` directly (total minus used overstates it).
 */

import { execFile } from 'node:child_process'
import type { GpuInfo } from '../../scheduler/types.ts'

/** The fields gridnode queries, in order. A headerless CSV is read in this order. */
export const NVIDIA_SMI_FIELDS: readonly string[] = [
  'index',
  'uuid',
  'name',
  'memory.total',
  'memory.free',
  'utilization.gpu',
]

export const NVIDIA_SMI_QUERY: readonly string[] = [
  `--query-gpu=${NVIDIA_SMI_FIELDS.join(',')}`,
  '--format=csv,noheader,nounits',
]

export type NvidiaSmiParse = { ok: true; gpus: GpuInfo[]; note?: string } | { ok: false; reason: string }

const NO_DEVICES = /^No devices were found/i

/** A `--query-gpu` header cell: a field name, optionally followed by a unit in brackets. */
const HEADER_CELL = /^[A-Za-z_][A-Za-z0-9_.]*(?:\s*\[[^\]]*\])?$/
/** Fields whose presence (with the shape above) marks the first line as a header. */
const KNOWN_FIELDS = new Set([
  'index',
  'uuid',
  'name',
  'memory.total',
  'memory.free',
  'memory.used',
  'memory.reserved',
  'utilization.gpu',
])
/** A number, optionally followed by a unit (`81559 MiB`, `71.15 W`, `45 %`). */
const NUMBER_WITH_UNIT = /^(-?\d+(?:\.\d+)?)(?:\s*[A-Za-z%/]+)?$/

/** `[N/A]`, `[Not Supported]`, `[Requested functionality has been deprecated]`, `N/A`, empty. */
export function isMissingValue(raw: string): boolean {
  const v = raw.trim()
  return v === '' || /^\[.*\]$/.test(v) || /^n\/a$/i.test(v) || /^not supported$/i.test(v)
}

/** `memory.free [MiB]` → `memory.free`. */
function fieldName(headerCell: string): string {
  return headerCell.replace(/\s*\[[^\]]*\]\s*$/, '').trim()
}

function splitCells(line: string): string[] {
  return line.split(',').map((c) => c.trim())
}

function firstLine(text: string): string {
  for (const line of text.split(/\r?\n/)) {
    if (line.trim() !== '') return line.trim()
  }
  return ''
}

function looksLikeHeader(cells: string[]): boolean {
  if (!cells.every((c) => HEADER_CELL.test(c))) return false
  return cells.some((c) => KNOWN_FIELDS.has(fieldName(c)))
}

type NumberResult = { ok: true; value: number | undefined } | { ok: false; reason: string }

function parseNumber(raw: string | undefined, field: string, lineNo: number): NumberResult {
  if (raw === undefined || isMissingValue(raw)) return { ok: true, value: undefined }
  const m = NUMBER_WITH_UNIT.exec(raw.trim())
  if (!m) return { ok: false, reason: `line ${lineNo}: ${field} is not a number: ${JSON.stringify(raw)}` }
  return { ok: true, value: Number(m[1]) }
}

/**
 * Parses `nvidia-smi --query-gpu=... --format=csv[,noheader][,nounits]`.
 *
 * With a header line, columns are found by field name (units stripped), so
 * any field order and extra fields work. Without one, the columns are
 * `fields` (default: NVIDIA_SMI_FIELDS, the order gridnode queries).
 * Never throws: anything it cannot read is `{ ok: false, reason }`.
 */
export function parseNvidiaSmiCsv(
  stdout: string,
  exitCode: number,
  fields: readonly string[] = NVIDIA_SMI_FIELDS,
): NvidiaSmiParse {
  const text = typeof stdout === 'string' ? stdout : ''
  const head = firstLine(text)
  // Which exit code nvidia-smi gives with no devices differs between versions: accept the message on any.
  if (NO_DEVICES.test(head)) return { ok: true, gpus: [], note: head }
  if (exitCode !== 0) {
    return { ok: false, reason: head || `nvidia-smi exited with code ${exitCode} and printed nothing` }
  }
  const lines = text.split(/\r?\n/).filter((l) => l.trim() !== '')
  if (lines.length === 0) return { ok: false, reason: 'nvidia-smi printed nothing' }

  let columns = fields.map((f) => f.trim())
  let rows = lines
  let firstRowLineNo = 1
  const firstCells = splitCells(lines[0])
  if (looksLikeHeader(firstCells)) {
    columns = firstCells.map(fieldName)
    rows = lines.slice(1)
    firstRowLineNo = 2
  }
  const col = (name: string): number => columns.indexOf(name)
  const iIndex = col('index')
  const iUuid = col('uuid')
  const iName = col('name')
  const iTotal = col('memory.total')
  const iFree = col('memory.free')
  const iUsed = col('memory.used')
  const iReserved = col('memory.reserved')
  const iUtil = col('utilization.gpu')
  if (iIndex < 0 && iName < 0 && iUuid < 0) {
    return { ok: false, reason: `no index, uuid or name column among: ${columns.join(', ')}` }
  }

  const gpus: GpuInfo[] = []
  const seen = new Set<number>()
  for (let r = 0; r < rows.length; r++) {
    const lineNo = firstRowLineNo + r
    const cells = splitCells(rows[r])
    if (cells.length !== columns.length) {
      return {
        ok: false,
        reason: `line ${lineNo} has ${cells.length} fields, expected ${columns.length} (${columns.join(', ')}): ${JSON.stringify(truncate(rows[r]))}`,
      }
    }
    let index = r
    if (iIndex >= 0) {
      const raw = cells[iIndex]
      if (!/^\d+$/.test(raw)) {
        return {
          ok: false,
          reason: `line ${lineNo}: index is not a GPU index: ${JSON.stringify(truncate(raw))}`,
        }
      }
      index = Number(raw)
    }
    if (seen.has(index)) return { ok: false, reason: `line ${lineNo}: GPU index ${index} appears twice` }
    seen.add(index)

    const nums: Record<string, number | undefined> = {}
    for (const [field, i] of [
      ['memory.total', iTotal],
      ['memory.free', iFree],
      ['memory.used', iUsed],
      ['memory.reserved', iReserved],
      ['utilization.gpu', iUtil],
    ] as const) {
      if (i < 0) continue
      const n = parseNumber(cells[i], field, lineNo)
      if (!n.ok) return n
      nums[field] = n.value
    }

    let memoryTotalMB = nums['memory.total']
    const used = nums['memory.used']
    const free = nums['memory.free']
    const reserved = nums['memory.reserved']
    if (memoryTotalMB === undefined && used !== undefined && free !== undefined && reserved !== undefined) {
      memoryTotalMB = used + free + reserved
    }

    const rawName = iName >= 0 ? cells[iName] : ''
    const rawUuid = iUuid >= 0 ? cells[iUuid] : ''
    const gpu: GpuInfo = { index, name: isMissingValue(rawName) ? `GPU ${index}` : rawName }
    if (!isMissingValue(rawUuid)) gpu.uuid = rawUuid
    if (memoryTotalMB !== undefined) gpu.memoryTotalMB = memoryTotalMB
    if (free !== undefined) gpu.memoryFreeMB = free
    if (nums['utilization.gpu'] !== undefined) gpu.utilizationPct = nums['utilization.gpu']
    gpus.push(gpu)
  }
  return { ok: true, gpus }
}

function truncate(s: string, max = 120): string {
  return s.length > max ? s.slice(0, max) + '…' : s
}

export interface ListedGpu {
  index: number
  name: string
  uuid?: string
  /** MIG devices under this GPU; address one as `CUDA_VISIBLE_DEVICES=<uuid>` (`MIG-…`). */
  mig: Array<{ device: number; profile: string; uuid: string }>
}

const LIST_GPU = /^GPU\s+(\d+):\s*(.*?)\s*(?:\(UUID:\s*([^)\s]+)\s*\))?\s*$/
const LIST_MIG = /^\s+MIG\s+(\S+)\s+Device\s+(\d+):\s*\(UUID:\s*([^)\s]+)\s*\)\s*$/

/** Parses `nvidia-smi -L`, including the indented MIG device lines. Lines it does not know are skipped. */
export function parseNvidiaSmiListL(text: string): ListedGpu[] {
  const out: ListedGpu[] = []
  for (const line of text.split(/\r?\n/)) {
    const g = LIST_GPU.exec(line)
    if (g) {
      const gpu: ListedGpu = { index: Number(g[1]), name: g[2], mig: [] }
      if (g[3]) gpu.uuid = g[3]
      out.push(gpu)
      continue
    }
    const m = LIST_MIG.exec(line)
    if (m && out.length > 0) {
      out[out.length - 1].mig.push({ profile: m[1], device: Number(m[2]), uuid: m[3] })
    }
  }
  return out
}

export interface ProbeGpusOptions {
  /**
   * The nvidia-smi executable; default `$GRIDNODE_NVIDIA_SMI` (a program run in nvidia-smi's place,
   * with nvidia-smi's arguments: tests point it at a script that cats a recorded output), else
   * `nvidia-smi` on PATH. No shell is involved.
   */
  command?: string
  /** Default 5000 ms. */
  timeoutMs?: number
}

/**
 * Runs nvidia-smi and returns the GPUs it reports. Never throws and never
 * rejects: any failure is zero GPUs with the reason in `note`.
 */
export function probeGpus(opts: ProbeGpusOptions = {}): Promise<{ gpus: GpuInfo[]; note?: string }> {
  const envCommand = process.env.GRIDNODE_NVIDIA_SMI
  const command = opts.command ?? (envCommand ? envCommand : 'nvidia-smi')
  const fromEnv = opts.command === undefined && Boolean(envCommand)
  const timeoutMs = opts.timeoutMs ?? 5000
  return new Promise((resolve) => {
    let settled = false
    const finish = (r: { gpus: GpuInfo[]; note?: string }): void => {
      if (settled) return
      settled = true
      clearTimeout(guard)
      resolve(r)
    }
    // execFile's callback waits for the child to exit; one stuck in the driver (uninterruptible
    // sleep) does not exit even on SIGKILL. Give up on it shortly after the timeout.
    const guard = setTimeout(
      () => finish({ gpus: [], note: `${command} timed out after ${timeoutMs} ms` }),
      timeoutMs + 1000,
    )
    guard.unref?.()
    let child: ReturnType<typeof execFile> | undefined
    try {
      child = execFile(
        command,
        [...NVIDIA_SMI_QUERY],
        {
          timeout: timeoutMs,
          killSignal: 'SIGKILL',
          encoding: 'utf8',
          maxBuffer: 4 * 1024 * 1024,
          windowsHide: true,
        },
        (err, stdout) => {
          const out = typeof stdout === 'string' ? stdout : ''
          if (err) {
            const e = err as NodeJS.ErrnoException & { killed?: boolean; signal?: string | null }
            if (fromEnv && (e.code === 'ENOENT' || e.code === 'EACCES')) {
              const what = e.code === 'ENOENT' ? 'names no file' : 'is not executable'
              return finish({
                gpus: [],
                note:
                  `GRIDNODE_NVIDIA_SMI=${command} ${what}: it must name a program run in nvidia-smi's place ` +
                  '(for a recorded output, a script that cats it)',
              })
            }
            if (e.code === 'ENOENT') {
              return finish({
                gpus: [],
                note:
                  command === 'nvidia-smi' ? 'nvidia-smi not found' : `nvidia-smi not found at ${command}`,
              })
            }
            if (e.killed) return finish({ gpus: [], note: `${command} timed out after ${timeoutMs} ms` })
            if (e.signal) return finish({ gpus: [], note: `${command} was killed by ${e.signal}` })
            if (typeof e.code === 'number') return finish(fromParse(parseNvidiaSmiCsv(out, e.code)))
            return finish({ gpus: [], note: `could not run ${command}: ${e.message}` })
          }
          finish(fromParse(parseNvidiaSmiCsv(out, 0)))
        },
      )
    } catch (err) {
      finish({ gpus: [], note: `could not run ${command}: ${(err as Error).message}` })
      return
    }
    child.on('error', () => {
      // Reported through the callback; listening here keeps a spawn error from being unhandled.
    })
  })
}

function fromParse(p: NvidiaSmiParse): { gpus: GpuInfo[]; note?: string } {
  if (!p.ok) return { gpus: [], note: p.reason }
  return p.note ? { gpus: p.gpus, note: p.note } : { gpus: p.gpus }
}
