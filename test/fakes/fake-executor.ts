/**
 * An in-memory Executor for unit tests of other layers: function tasks call
 * plain JS functions from a table of "modules" keyed by bundle hash, in this
 * thread. It speaks the real executor's outcomes and messages (it passes the
 * shared suite in test/executor/suite.ts), but it cannot stop a synchronous
 * function that runs past its time limit (it reports `timeout` and lets it
 * finish in the background), and it runs no commands unless given a handler.
 */
import type { Executor, RunOptions } from '../../src/executor/executor.ts'
import { decodeValue, encodeValue } from '../../src/executor/values.ts'
import {
  bundleLabel,
  callArgs,
  describeThrown,
  missingExportMessage,
  notAFunctionMessage,
} from '../../src/executor/worker-protocol.ts'
import type { JobSpec, TaskDescriptor, TaskOutcome } from '../../src/scheduler/types.ts'

export interface FakeExecutorOptions {
  /** Bundle hash → the module's exports. */
  modules?: Record<string, Record<string, unknown>>
  /** Tasks running at once; the rest wait in order (default: no limit). */
  slots?: number
  /** Runs command tasks; without it they are rejected. */
  command?: (argv: string[], input: unknown, opts: RunOptions) => TaskOutcome | Promise<TaskOutcome>
  /** Return an outcome to use it instead of running the task (to fake crashes and the like). */
  override?: (job: JobSpec, task: TaskDescriptor) => TaskOutcome | undefined
}

export interface FakeRun {
  job: JobSpec
  task: TaskDescriptor
  gpus: number[]
  outcome?: TaskOutcome
}

export class FakeExecutor implements Executor {
  /** Every run() call, in order, with its outcome once known. */
  readonly runs: FakeRun[] = []
  running = 0
  maxRunning = 0
  closed = false
  private readonly opts: FakeExecutorOptions
  private readonly waiting: Array<() => void> = []

  constructor(opts: FakeExecutorOptions = {}) {
    this.opts = opts
  }

  /** Adds (or replaces) a module after construction. */
  addModule(hash: string, exports: Record<string, unknown>): void {
    this.opts.modules = { ...this.opts.modules, [hash]: exports }
  }

  async run(job: JobSpec, task: TaskDescriptor, opts: RunOptions): Promise<TaskOutcome> {
    const record: FakeRun = { job, task, gpus: opts.gpus }
    this.runs.push(record)
    record.outcome = await this.runRecorded(job, task, opts)
    return record.outcome
  }

  async close(): Promise<void> {
    this.closed = true
  }

  private async runRecorded(job: JobSpec, task: TaskDescriptor, opts: RunOptions): Promise<TaskOutcome> {
    if (this.closed) return { status: 'crashed', error: 'executor closed', durationMs: 0 }
    if (opts.signal?.aborted) return cancelled(0)
    const overridden = this.opts.override?.(job, task)
    if (overridden !== undefined) return overridden
    if (job.work.kind === 'noop') return { status: 'ok', value: new Uint8Array(0), durationMs: 0 }
    const acquired = await this.acquire(opts.signal)
    if (!acquired) return cancelled(0)
    const start = performance.now()
    try {
      const work = this.start(job, task, opts)
      const outcome = await raceLimits(work, job.timeoutMs, opts.signal, start)
      return { ...outcome, durationMs: performance.now() - start } as TaskOutcome
    } finally {
      this.release()
    }
  }

  /** Starts the task; resolves to its outcome without durationMs. */
  private start(job: JobSpec, task: TaskDescriptor, opts: RunOptions): Promise<TaskOutcome> {
    const work = job.work
    const reject = (error: string) =>
      Promise.resolve<TaskOutcome>({ status: 'rejected', error, durationMs: 0 })
    let input: unknown
    let deps: unknown[]
    try {
      input = decodeValue(task.input)
      deps = task.depValues.map(decodeValue)
    } catch (err) {
      return reject(`cannot decode the task's input: ${(err as Error).message}`)
    }
    if (work.kind === 'command') {
      if (this.opts.command === undefined) return reject('the fake executor runs no commands')
      return Promise.resolve(this.opts.command(work.argv, input, opts))
    }
    if (work.kind !== 'function') return reject('unknown work kind')
    const mod = this.opts.modules?.[work.bundle]
    if (mod === undefined) {
      return reject(`bundle ${bundleLabel(work.bundle)} unavailable: not in the fake executor`)
    }
    if (!(work.exportName in mod)) {
      return reject(missingExportMessage(work.bundle, work.exportName, Object.keys(mod)))
    }
    const fn = mod[work.exportName]
    if (typeof fn !== 'function') {
      return reject(notAFunctionMessage(work.bundle, work.exportName, fn))
    }
    const args = callArgs(work.call === 'apply', input, deps)
    if (typeof args === 'string') return reject(args)
    return (async () => {
      let value: unknown
      try {
        value = await fn(...args)
      } catch (err) {
        return { status: 'threw', ...describeThrown(err), durationMs: 0 } as TaskOutcome
      }
      try {
        return { status: 'ok', value: encodeValue(value, 'result'), durationMs: 0 } as TaskOutcome
      } catch (err) {
        return { status: 'threw', error: (err as Error).message, durationMs: 0 } as TaskOutcome
      }
    })()
  }

  /** Takes a slot (counted in `running` at once), waiting in order for one if none is free. */
  private acquire(signal: AbortSignal | undefined): Promise<boolean> {
    const slots = this.opts.slots ?? Number.POSITIVE_INFINITY
    if (this.running < slots && this.waiting.length === 0) {
      this.took()
      return Promise.resolve(true)
    }
    return new Promise((resolve) => {
      const go = () => {
        signal?.removeEventListener('abort', onAbort)
        this.took()
        resolve(true)
      }
      const onAbort = () => {
        const i = this.waiting.indexOf(go)
        if (i >= 0) this.waiting.splice(i, 1)
        resolve(false)
      }
      signal?.addEventListener('abort', onAbort, { once: true })
      this.waiting.push(go)
    })
  }

  private took(): void {
    this.running++
    this.maxRunning = Math.max(this.maxRunning, this.running)
  }

  private release(): void {
    this.running--
    this.waiting.shift()?.()
  }
}

export function createFakeExecutor(opts: FakeExecutorOptions = {}): FakeExecutor {
  return new FakeExecutor(opts)
}

function cancelled(durationMs: number): TaskOutcome {
  return { status: 'rejected', error: 'cancelled', durationMs }
}

function raceLimits(
  work: Promise<TaskOutcome>,
  timeoutMs: number,
  signal: AbortSignal | undefined,
  start: number,
): Promise<TaskOutcome> {
  if (timeoutMs <= 0 && signal === undefined) return work
  return new Promise((resolve) => {
    let timer: NodeJS.Timeout | undefined
    const done = (o: TaskOutcome) => {
      if (timer !== undefined) clearTimeout(timer)
      signal?.removeEventListener('abort', onAbort)
      resolve(o)
    }
    const onAbort = () => done(cancelled(performance.now() - start))
    if (timeoutMs > 0) {
      timer = setTimeout(
        () => done({ status: 'timeout', error: `task timed out after ${timeoutMs} ms`, durationMs: 0 }),
        timeoutMs,
      )
    }
    signal?.addEventListener('abort', onAbort, { once: true })
    work.then(done)
  })
}
