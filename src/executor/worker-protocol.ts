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
 * So each task runs at most once: on this worker if it started before the swap,
 * elsewhere if not.
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

export type ToWorker =
  | { type: 'run'; tasks: WireTask[] }
  | { type: 'cancel'; id: number }
  | { type: 'revoke' }

export interface WireResult {
  id: number
  status: 'ok' | 'threw' | 'rejected'
  value?: Uint8Array
  error?: string
  stack?: string
  /** How long the task ran in the worker, module loading included. */
  ms: number
}

export type FromWorker = { type: 'results'; results: WireResult[] } | { type: 'revoked' }

export interface WorkerInit {
  /** Int32Array of STATE_WORDS over a SharedArrayBuffer. */
  state: SharedArrayBuffer
  /** `performance.timeOrigin + performance.now()` on the main thread when the worker was made. */
  epoch: number
}

export const STATE_RUNNING = 0
export const STATE_STARTED = 1
export const STATE_WORDS = 2

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

/**
 * The task as sent: inputs that are views into bigger buffers are copied and
 * the copies transferred (cloning a view would copy its whole buffer); whole
 * buffers are left to the structured clone, since the caller keeps them.
 */
/**
 * Copies the inputs of a whole batch into one buffer and returns the tasks with views into it:
 * one transfer per message instead of one per task (transferring many small buffers costs more
 * than the tasks themselves when they are tiny).
 */
export function packBatch(tasks: WireTask[], transfer: ArrayBuffer[]): WireTask[] {
  let size = 0
  for (const t of tasks) {
    size += t.input.byteLength
    for (const d of t.deps) size += d.byteLength
  }
  const buf = new Uint8Array(size)
  let at = 0
  const place = (bytes: Uint8Array): Uint8Array => {
    buf.set(bytes, at)
    const view = buf.subarray(at, at + bytes.byteLength)
    at += bytes.byteLength
    return view
  }
  const packed = tasks.map((t) => ({ ...t, input: place(t.input), deps: t.deps.map(place) }))
  transfer.push(buf.buffer)
  return packed
}
