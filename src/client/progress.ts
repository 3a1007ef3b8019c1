/**
 * Progress as people read it: a rate over the last few seconds, an ETA, and
 * one line of text. Pure (time is passed in), so the CLI's live bar and a
 * library user's own display share it, and tests can check the exact text.
 *
 *   ████████████░░░░░░░░░░░░  512/1000  51%  2 failed  8 running  83.4 tasks/s  ETA 6s  4 nodes
 */
import type { InputFileStep } from './files.ts'
import type { Progress } from './job.ts'

export interface ProgressView {
  total: number
  done: number
  failed: number
  running: number
  nodes: number
  /** Tasks finished per second over the recent window (0 until two samples). */
  rate: number
  /** Milliseconds left at that rate; undefined while unknown. */
  etaMs: number | undefined
  elapsedMs: number
}

const WINDOW_MS = 10_000

/** Turns progress events into rates: keeps (time, finished) samples over a sliding window. */
export class ProgressMeter {
  private readonly samples: Array<{ at: number; finished: number }> = []
  private readonly startedAt: number
  private last: Progress | undefined

  constructor(now: number) {
    this.startedAt = now
    this.samples.push({ at: now, finished: 0 })
  }

  update(p: Progress, now: number): ProgressView {
    this.last = p
    const finished = p.done + p.failed
    this.samples.push({ at: now, finished })
    while (this.samples.length > 2 && now - this.samples[1].at > WINDOW_MS) this.samples.shift()
    return this.view(now)
  }

  /** The latest view at `now` (an ETA ticks down between events). */
  view(now: number): ProgressView {
    const p = this.last ?? { job: '', total: 0, done: 0, failed: 0, running: 0, nodes: 0 }
    const first = this.samples[0]
    const latest = this.samples[this.samples.length - 1]
    const span = latest.at - first.at
    const rate = span > 0 ? ((latest.finished - first.finished) * 1000) / span : 0
    const left = p.total - p.done - p.failed
    let etaMs: number | undefined
    if (left <= 0) etaMs = 0
    else if (rate > 0) {
      const eta = (left * 1000) / rate - (now - latest.at)
      // Past its own estimate with tasks left (they take longer than the pace so far: inputs still
      // being fetched, a slow task), the time left is unknown again, not "0s" for as long as it takes.
      etaMs = eta > 0 ? eta : undefined
    }
    return {
      total: p.total,
      done: p.done,
      failed: p.failed,
      running: p.running,
      nodes: p.nodes,
      rate,
      etaMs,
      elapsedMs: now - this.startedAt,
    }
  }
}

/** One line: bar, done/total, percent, failures and tasks running (when any), rate, ETA, nodes. */
export function formatProgress(v: ProgressView, barWidth = 24): string {
  const finished = v.done + v.failed
  const fraction = v.total > 0 ? Math.min(1, finished / v.total) : 0
  const filled = Math.round(fraction * barWidth)
  const parts = [
    '█'.repeat(filled) + '░'.repeat(barWidth - filled),
    `${finished}/${v.total}`,
    `${Math.floor(fraction * 100)}%`,
  ]
  if (v.failed > 0) parts.push(`${v.failed} failed`)
  if (v.running > 0 && finished < v.total) parts.push(`${v.running} running`)
  parts.push(`${formatRate(v.rate)} tasks/s`)
  parts.push(`ETA ${v.etaMs === undefined ? '?' : formatDuration(v.etaMs)}`)
  parts.push(v.nodes === 1 ? '1 node' : `${v.nodes} nodes`)
  return parts.join('  ')
}

/** What a job's input files are doing before it is submitted (Job's `inputs` event), for people. */
export function formatInputStep(s: InputFileStep): string {
  const which = s.count > 1 ? ` ${s.index + 1}/${s.count}` : ''
  const what = { hashing: 'hashing', uploading: 'uploading to the daemon', present: 'already on the daemon' }[
    s.step
  ]
  return `input file${which}: ${s.file} (${formatBytes(s.bytes)}), ${what}${s.step === 'present' ? '' : '…'}`
}

/** 1536 → "1.5 KB", 200 MiB → "209.7 MB" (decimal units, as file managers show sizes). */
export function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`
  const units = ['KB', 'MB', 'GB', 'TB']
  let v = n
  let u = -1
  while (v >= 1000 && u < units.length - 1) {
    v /= 1000
    u++
  }
  return `${v.toFixed(1)} ${units[u]}`
}

export function formatRate(rate: number): string {
  if (rate >= 100) return String(Math.round(rate))
  if (rate >= 10) return rate.toFixed(1)
  return rate.toFixed(2)
}

/** 950 ms → "1s", 75 s → "1m15s", 2 h 5 min → "2h05m". */
export function formatDuration(ms: number): string {
  const s = Math.round(ms / 1000)
  if (s < 60) return `${s}s`
  const m = Math.floor(s / 60)
  if (m < 60) return `${m}m${String(s % 60).padStart(2, '0')}s`
  const h = Math.floor(m / 60)
  return `${h}h${String(m % 60).padStart(2, '0')}m`
}
