/**
 * What the worker pool (main thread) and worker.ts say to each other.
 *
 * Tasks travel in batches: one `run` message may carry many tasks, which the
 * worker runs one after another, and it answers with `results` messages that
 * carry several results each, always in the order the tasks arrived (a task
 * cancelled before it started gets a `rejected` result, so the order holds).
 *
 * Besides messages, each worker shares a small Int32Array with the pool: the
 * id of the task it is running (0: none) and when that task started, in ms
 * since the worker's epoch. The pool reads it to time tasks out and to know
 * which task was running when a worker died, without one message per task.
 *
 * Taking back queued tasks (`revoke`): a worker may hold tasks queued behind the
 * one it runs (TaskCosts). When that task runs long while another worker sits
 * idle, the pool takes the queued ones back so the idle worker runs them:
 *
 * 1. the pool swaps the running id r for -r (compare-and-swap): it succeeds only
 *    while r still runs, so nothing after r has started;
 * 2. the pool sends `revoke` and sends this worker nothing more until it answers;
 * 3. the worker, ending r, swaps r for 0 (compare-and-swap); finding -r instead,
 *    it drops every task it holds and every task that arrives before `revoke`
 *    (all sent before the swap), and answers `revoked` once it has both ended r
 *    and read `revoke`.
 *
 * So taking tasks back never runs one twice: on this worker if it started before
 * the swap, elsewhere if not.
 */

import { inspect, types } from 'node:util'
import { PIPELINE_TASK_MS, type TaskOutcome } from '../domain/types.ts'

export interface WireTask {
  id: number
  /** Bundle hash, for messages. */
  bundle: string
  /** file: URL the worker imports the bundle from. */
  url: string
  exportName: string
  /** true for call 'apply', false for 'map'. */
  apply: boolean
  input: Uint8Array
  deps: Uint8Array[]
  /** CUDA_VISIBLE_DEVICES for the task's duration, when it holds GPUs. */
  gpus?: string
  /**
   * Process workers only: the task's own working directory (absolute), entered just before
   * it runs and left when it ends (threads share their process's cwd and never get one).
   */
  cwd?: string
}

export type ToWorker = RunMessage | { type: 'cancel'; id: number } | { type: 'revoke' }

export interface WireResult {
  id: number
  status: 'ok' | 'threw' | 'rejected'
  value?: Uint8Array
  error?: string
  stack?: string
  /** How long the task ran in the worker, module loading included. */
  ms: number
}

export type FromWorker = ResultsMessage | { type: 'revoked' }

/**
 * Results from a thread worker, in columns like RunMessage: small values one after another in one
 * buffer (not an ArrayBuffer each), big ones (over TRANSFER_BYTES, a buffer of their own)
 * transferred as they are, error texts only for the results that have them.
 */
export interface ResultsMessage {
  type: 'results'
  ids: Int32Array
  /** Index into RESULT_STATUSES. */
  status: Uint8Array
  ms: Float64Array
  bytes: Uint8Array
  /** Where each result's value ends in bytes (it starts where the one before ended); a big or absent value takes none. */
  ends: Uint32Array
  /** 1 for a result with no value (kept apart from an empty value), one byte per result. */
  absent: Uint8Array
  big: Array<{ at: number; value: Uint8Array }>
  errors: Array<{ at: number; error?: string; stack?: string }>
}

const RESULT_STATUSES = ['ok', 'threw', 'rejected'] as const
/** A value bigger than this whose buffer is its own travels by transfer, not by copy. */
export const TRANSFER_BYTES = 4096

/** Packs results into one message; the buffers to transfer go on `transfer`. */
export function packResults(results: readonly WireResult[], transfer: ArrayBuffer[]): ResultsMessage {
  const n = results.length
  const ids = new Int32Array(n)
  const status = new Uint8Array(n)
  const ms = new Float64Array(n)
  const ends = new Uint32Array(n)
  const absent = new Uint8Array(n)
  const big: ResultsMessage['big'] = []
  const errors: ResultsMessage['errors'] = []
  let size = 0
  for (const r of results) if (r.value !== undefined && !transferable(r.value)) size += r.value.byteLength
  const bytes = new Uint8Array(size)
  let at = 0
  for (let i = 0; i < n; i++) {
    const r = results[i]
    ids[i] = r.id
    status[i] = RESULT_STATUSES.indexOf(r.status)
    ms[i] = r.ms
    const v = r.value
    if (v === undefined) absent[i] = 1
    else if (transferable(v)) {
      big.push({ at: i, value: v })
      transfer.push(v.buffer as ArrayBuffer)
    } else {
      bytes.set(v, at)
      at += v.byteLength
    }
    ends[i] = at
    if (r.error !== undefined || r.stack !== undefined) {
      const e: ResultsMessage['errors'][number] = { at: i }
      if (r.error !== undefined) e.error = r.error
      if (r.stack !== undefined) e.stack = r.stack
      errors.push(e)
    }
  }
  transfer.push(bytes.buffer)
  return { type: 'results', ids, status, ms, bytes, ends, absent, big, errors }
}

function transferable(v: Uint8Array): boolean {
  return v.byteLength > TRANSFER_BYTES && v.byteOffset === 0 && v.byteLength === v.buffer.byteLength
}

/**
 * The results of a message, values as views into its buffer; undefined when the message is not
 * one packResults made (task code can post to the same port).
 */
export function unpackResults(m: ResultsMessage): WireResult[] | undefined {
  if (
    !(m.ids instanceof Int32Array) ||
    !(m.status instanceof Uint8Array) ||
    !(m.ms instanceof Float64Array) ||
    !(m.bytes instanceof Uint8Array) ||
    !(m.ends instanceof Uint32Array) ||
    !(m.absent instanceof Uint8Array) ||
    !Array.isArray(m.big) ||
    !Array.isArray(m.errors)
  )
    return undefined
  const n = m.ids.length
  if (m.status.length !== n || m.ms.length !== n || m.ends.length !== n || m.absent.length !== n)
    return undefined
  const out: WireResult[] = new Array(n)
  let start = 0
  for (let i = 0; i < n; i++) {
    const status = RESULT_STATUSES[m.status[i]]
    const end = m.ends[i]
    const ms = m.ms[i]
    if (status === undefined || end < start || end > m.bytes.byteLength) return undefined
    // A NaN time would make its function's batch size NaN for good (TaskCosts), and the pool stall.
    if (!Number.isFinite(ms) || ms < 0) return undefined
    const r: WireResult = { id: m.ids[i], status, ms }
    if (m.absent[i] === 0) r.value = m.bytes.subarray(start, end)
    start = end
    out[i] = r
  }
  for (const b of m.big) {
    const r = at(out, b)
    if (r === undefined || !(b.value instanceof Uint8Array)) return undefined
    r.value = b.value
  }
  for (const e of m.errors) {
    const r = at(out, e)
    if (r === undefined) return undefined
    if (typeof e.error === 'string') r.error = e.error
    if (typeof e.stack === 'string') r.stack = e.stack
  }
  return out
}

/** The result an entry names by position; undefined for anything but an index of one (`length`, `__proto__`). */
function at(out: WireResult[], entry: { at: unknown } | null | undefined): WireResult | undefined {
  const i = entry?.at
  return typeof i === 'number' && Number.isInteger(i) && i >= 0 && i < out.length ? out[i] : undefined
}

export interface WorkerInit {
  /** Int32Array of STATE_WORDS over a SharedArrayBuffer. */
  state: SharedArrayBuffer
  /** `performance.timeOrigin + performance.now()` on the main thread when the worker was made. */
  epoch: number
}

export const STATE_RUNNING = 0
export const STATE_STARTED = 1
export const STATE_WORDS = 2

/**
 * Tasks queued on a worker behind a task that has run this long (ms) go to an idle worker (both
 * pools). About the queued work a quick function's batch holds (BATCH_BUDGET_MS): tiny tasks never
 * wait this long, so their batches stay where they are; longer ones are placed as a list
 * scheduler would.
 */
export const REVOKE_AFTER_MS = 2

/** One pending look-again timer (a pool's rebalance): armed once until it fires; never keeps the process up. */
export class Recheck {
  private timer: NodeJS.Timeout | undefined
  private readonly run: () => void

  constructor(run: () => void) {
    this.run = run
  }

  /** Runs it in `ms` (rounded up), unless a look is already due; Infinity: no look needed. */
  after(ms: number): void {
    if (this.timer !== undefined || ms === Number.POSITIVE_INFINITY) return
    this.timer = setTimeout(() => {
      this.timer = undefined
      this.run()
    }, Math.ceil(ms))
    this.timer.unref()
  }

  cancel(): void {
    if (this.timer !== undefined) clearTimeout(this.timer)
    this.timer = undefined
  }
}

/** How much queued work (ms) a worker may hold beyond the task it runs. */
const BATCH_BUDGET_MS = 2
const COST_EWMA = 0.2

/**
 * Mean run time per function (bundle and export, as the pool keys it), and from it how many
 * tasks one worker holds at once: about BATCH_BUDGET_MS of work, and two for functions under
 * PIPELINE_TASK_MS, so a worker that finishes one starts the next without waiting for the
 * daemon's main thread when the scheduler feeds it two per slot (Holder.depth). Both pools use it.
 */
export class TaskCosts {
  private readonly mean = new Map<string, number>()
  private readonly maxInFlight: number

  constructor(maxInFlight: number) {
    this.maxInFlight = Math.max(1, maxInFlight)
  }

  learn(key: string, ms: number): void {
    const old = this.mean.get(key)
    if (old === undefined && this.mean.size > 1000) this.mean.clear()
    this.mean.set(key, old === undefined ? ms : old + COST_EWMA * (ms - old))
  }

  /** Tasks of this function to keep in flight on one worker (one until a run was timed). */
  inFlightCap(key: string): number {
    const ms = this.mean.get(key)
    if (ms === undefined) return 1
    const least = ms < PIPELINE_TASK_MS ? 2 : 1
    return Math.max(least, Math.min(this.maxInFlight, Math.floor(BATCH_BUDGET_MS / Math.max(ms, 0.001))))
  }
}

/**
 * Whether a worker holding `inFlight` tasks takes more now: while idle, or once it is down to half
 * its cap (then it is filled up). Topped up as each result came back, a worker fed by the
 * scheduler one finished task at a time got batches of about 5 no-ops (a message each way per 5
 * tasks, 1 daemon x 2 slots); refilled at half, 19 on the same run, and the daemon's main thread
 * spent a fifth less per task.
 */
export function hasRoom(inFlight: number, cap: number): boolean {
  return inFlight < cap && inFlight <= cap >> 1
}

/** Milliseconds since `epoch`, comparable across threads. */
export function sinceEpoch(epoch: number): number {
  return performance.timeOrigin + performance.now() - epoch
}

export function bundleLabel(hash: string): string {
  return hash.slice(0, 12)
}

/** The message of a task whose export is missing; the fake executor says the same. */
export function missingExportMessage(hash: string, exportName: string, exports: string[]): string {
  const list = exports.length > 0 ? exports.join(', ') : 'none'
  return `module ${bundleLabel(hash)} has no export ${JSON.stringify(exportName)} (exports: ${list})`
}

export function notAFunctionMessage(hash: string, exportName: string, value: unknown): string {
  return `export ${JSON.stringify(exportName)} of module ${bundleLabel(hash)} is not a function (it is ${describeType(value)})`
}

function describeType(v: unknown): string {
  if (v === null) return 'null'
  if (Array.isArray(v)) return 'an array'
  const t = typeof v
  return t === 'object' || t === 'undefined' ? t : `a ${t}`
}

/**
 * The arguments a task's function is called with: `(input, ...deps)` for call
 * 'map'; for 'apply', the input array with each `{ $gridnodeDep: k }` element
 * replaced by `deps[k]`. A string is the reason the task is rejected.
 */
export function callArgs(apply: boolean, input: unknown, deps: unknown[]): unknown[] | string {
  if (!apply) return [input, ...deps]
  if (!Array.isArray(input)) return `call 'apply' needs an array of arguments as input, got ${typeof input}`
  const args = new Array<unknown>(input.length)
  for (let i = 0; i < input.length; i++) {
    const k = depIndexOf(input[i])
    if (k === undefined) {
      args[i] = input[i]
    } else if (Number.isInteger(k) && k >= 0 && k < deps.length) {
      args[i] = deps[k]
    } else {
      return `argument ${i} refers to dependency ${k} but the task has ${deps.length} dependenc${deps.length === 1 ? 'y' : 'ies'}`
    }
  }
  return args
}

function depIndexOf(arg: unknown): number | undefined {
  if (typeof arg !== 'object' || arg === null || Array.isArray(arg)) return undefined
  const keys = Object.keys(arg)
  if (keys.length !== 1 || keys[0] !== '$gridnodeDep') return undefined
  const k = (arg as { $gridnodeDep: unknown }).$gridnodeDep
  return typeof k === 'number' ? k : Number.NaN
}

/** The error and stack a task that threw reports. */
export function describeThrown(err: unknown): { error: string; stack?: string } {
  if (types.isNativeError(err) || err instanceof Error) {
    const e = err as Error
    const name = typeof e.name === 'string' && e.name !== 'Error' ? `${e.name}: ` : ''
    return { error: `${name}${String(e.message)}`, stack: typeof e.stack === 'string' ? e.stack : undefined }
  }
  if (typeof err === 'string') return { error: err }
  return {
    error: `non-Error value thrown: ${inspect(err, { depth: 2, breakLength: Number.POSITIVE_INFINITY }).slice(0, 500)}`,
  }
}

export function toOutcome(r: WireResult): TaskOutcome {
  switch (r.status) {
    case 'ok':
      return { status: 'ok', value: r.value ?? new Uint8Array(0), durationMs: r.ms }
    case 'threw':
      return r.stack === undefined
        ? { status: 'threw', error: r.error ?? 'unknown error', durationMs: r.ms }
        : { status: 'threw', error: r.error ?? 'unknown error', stack: r.stack, durationMs: r.ms }
    default:
      return { status: 'rejected', error: r.error ?? 'rejected', durationMs: r.ms }
  }
}

/** A function a batch calls, once per batch however many of its tasks call it. */
export interface BatchFunction {
  bundle: string
  url: string
  exportName: string
  apply: boolean
}

/**
 * A batch of tasks as it travels to a worker (thread or process), in columns: each function's
 * strings once, every input and dependency value in one buffer (one transfer per message, not one
 * per task), ids and offsets in typed arrays. As an array of task objects, a batch of 20 no-ops
 * cost the pool's postMessage 1.2 us per task, nearly all of it the bundle hash and file URL
 * each task repeated; in columns, under 0.1 us.
 */
export interface RunMessage {
  type: 'run'
  fns: BatchFunction[]
  ids: Int32Array
  /** Each task's function: its position in fns. */
  fn: Uint32Array
  /** Every input, one after another, then every dependency value. */
  bytes: Uint8Array
  /** Where each task's input ends in bytes (it starts where the one before ended). */
  ends: Uint32Array
  /** Tasks with dependency values (start/end pairs in bytes), GPUs or a working directory, in task order. */
  extras: Array<{ at: number; deps?: number[]; gpus?: string; cwd?: string }>
}

/** Packs tasks into one run message; its buffer goes on `transfer` when one is given (threads). */
export function packRun(tasks: readonly WireTask[], transfer?: ArrayBuffer[]): RunMessage {
  const n = tasks.length
  let size = 0
  for (const t of tasks) {
    size += t.input.byteLength
    for (const d of t.deps) size += d.byteLength
  }
  const bytes = new Uint8Array(size)
  const ids = new Int32Array(n)
  const fn = new Uint32Array(n)
  const ends = new Uint32Array(n)
  const fns: BatchFunction[] = []
  const fnAt = new Map<string, number>()
  const extras: RunMessage['extras'] = []
  let at = 0
  for (let i = 0; i < n; i++) {
    const t = tasks[i]
    ids[i] = t.id
    const key = `${t.url}\n${t.bundle}\n${t.exportName}\n${t.apply}`
    let f = fnAt.get(key)
    if (f === undefined) {
      f = fns.push({ bundle: t.bundle, url: t.url, exportName: t.exportName, apply: t.apply }) - 1
      fnAt.set(key, f)
    }
    fn[i] = f
    bytes.set(t.input, at)
    at += t.input.byteLength
    ends[i] = at
    if (t.deps.length > 0 || t.gpus !== undefined || t.cwd !== undefined) {
      const extra: RunMessage['extras'][number] = { at: i }
      if (t.gpus !== undefined) extra.gpus = t.gpus
      if (t.cwd !== undefined) extra.cwd = t.cwd
      if (t.deps.length > 0) extra.deps = []
      extras.push(extra)
    }
  }
  for (const extra of extras) {
    if (extra.deps === undefined) continue
    for (const d of tasks[extra.at].deps) {
      bytes.set(d, at)
      extra.deps.push(at, at + d.byteLength)
      at += d.byteLength
    }
  }
  transfer?.push(bytes.buffer)
  return { type: 'run', fns, ids, fn, bytes, ends, extras }
}

const NO_DEPS: readonly Uint8Array[] = Object.freeze([])

/** The tasks of a run message, their inputs and dependency values views into its buffer. */
export function unpackRun(m: RunMessage): WireTask[] {
  const out: WireTask[] = new Array(m.ids.length)
  let start = 0
  let x = 0
  for (let i = 0; i < m.ids.length; i++) {
    const f = m.fns[m.fn[i]]
    const end = m.ends[i]
    const t: WireTask = {
      id: m.ids[i],
      bundle: f.bundle,
      url: f.url,
      exportName: f.exportName,
      apply: f.apply,
      input: m.bytes.subarray(start, end),
      deps: NO_DEPS as Uint8Array[],
    }
    start = end
    const extra = m.extras[x]
    if (extra !== undefined && extra.at === i) {
      x++
      if (extra.gpus !== undefined) t.gpus = extra.gpus
      if (extra.cwd !== undefined) t.cwd = extra.cwd
      if (extra.deps !== undefined) {
        const deps: Uint8Array[] = []
        for (let k = 0; k < extra.deps.length; k += 2)
          deps.push(m.bytes.subarray(extra.deps[k], extra.deps[k + 1]))
        t.deps = deps
      }
    }
    out[i] = t
  }
  return out
}
