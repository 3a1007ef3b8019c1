/**
 * The live progress bar on stderr: only on a terminal and never with --json.
 * cli-progress draws and redraws it (throttled, cursor hidden, cleared at the
 * end); the text itself is formatProgress from the library, tested as a unit.
 * Lines logged while the bar is up are printed above it.
 */
import cliProgress from 'cli-progress'
import type { InputFileStep } from '../src/client/files.ts'
import type { Job, Progress } from '../src/client/job.ts'
import { formatInputStep, formatProgress, ProgressMeter } from '../src/client/progress.ts'

export interface ProgressDisplay {
  /** A line for stderr that must not tear the bar. */
  log(line: string): void
  stop(): void
}

export function showProgress(job: Job<unknown>, enabled: boolean): ProgressDisplay {
  if (!enabled) return { log: (line) => process.stderr.write(`${line}\n`), stop: () => {} }
  const meter = new ProgressMeter(performance.now())
  const bars = new cliProgress.MultiBar({
    stream: process.stderr,
    format: () => formatProgress(meter.view(performance.now()), barWidth()),
    hideCursor: true,
    clearOnComplete: false,
    stopOnComplete: false,
    gracefulExit: false,
    fps: 5,
    etaBuffer: 1,
  })
  const bar = bars.create(1, 0)
  const onProgress = (p: Progress) => {
    meter.update(p, performance.now())
    bar.setTotal(Math.max(1, p.total))
    bar.update(p.done + p.failed)
  }
  job.on('progress', onProgress)
  let stopped = false
  return {
    log: (line) => (stopped ? process.stderr.write(`${line}\n`) : bars.log(`${line}\n`)),
    stop: () => {
      if (stopped) return
      stopped = true
      job.off('progress', onProgress)
      bars.update()
      bars.stop()
    },
  }
}

/**
 * Before a job is submitted (and before its bar: a submission problem is one clear line), what
 * its input files are doing, on one line rewritten in place: hashing and uploading a big file
 * takes seconds. Returns the function that clears the line once the job is submitted or failed.
 */
export function showInputSteps(
  job: Pick<Job<unknown>, 'on' | 'off'>,
  enabled: boolean,
  stream: Pick<NodeJS.WriteStream, 'write' | 'columns'> = process.stderr,
): () => void {
  if (!enabled) return () => {}
  let shown = false
  const onInputs = (s: InputFileStep) => {
    const line = formatInputStep(s).slice(0, Math.max(20, (stream.columns ?? 80) - 1))
    stream.write(`\r\x1b[2K${line}`)
    shown = true
  }
  job.on('inputs', onInputs)
  return () => {
    job.off('inputs', onInputs)
    if (shown) stream.write('\r\x1b[2K')
  }
}

/** Leaves room for the counters after the bar on narrow terminals. */
function barWidth(): number {
  const columns = process.stderr.columns ?? 80
  return Math.max(10, Math.min(30, columns - 70))
}

export function progressWanted(json: boolean | undefined): boolean {
  return !json && process.stderr.isTTY === true
}
