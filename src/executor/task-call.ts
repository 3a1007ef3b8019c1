/**
 * Running one task inside a worker (a thread or a sandboxed process): import
 * its bundle (cached per URL), find the export, decode the input, call it,
 * and describe how it ended as a WireResult. Transport-free: worker.ts and
 * sandbox/sandbox-worker.ts each carry the results back their own way.
 */
import { findSourceMap } from 'node:module'
import { fileURLToPath } from 'node:url'
import { decodeOwned, encodeValue } from '../domain/values.ts'
import {
  bundleLabel,
  callArgs,
  describeThrown,
  missingExportMessage,
  notAFunctionMessage,
  type WireResult,
  type WireTask,
} from './worker-protocol.ts'

export type Namespace = Record<string, unknown>

export class TaskCaller {
  private readonly modules = new Map<string, Namespace>()
  /** URLs of the worker's own modules: their frames are cut from the stacks tasks report. */
  private readonly ownUrls: string[]

  private readonly beforeCall: ((task: WireTask) => void) | undefined

  /** `beforeCall` runs just before each task's function (worker.ts sets the task's GPU environment there). */
  constructor(ownUrls: string[], beforeCall?: (task: WireTask) => void) {
    this.ownUrls = [...ownUrls, import.meta.url]
    this.beforeCall = beforeCall
  }

  /** Bundles imported so far. */
  get loaded(): number {
    return this.modules.size
  }

  /** A result at once when the module is loaded and the function returns a plain value, else a promise. */
  run(task: WireTask): WireResult | Promise<WireResult> {
    const start = performance.now()
    const mod = this.modules.get(task.url)
    return mod === undefined ? this.loadThenCall(task, start) : this.callExport(mod, task, start)
  }

  private async loadThenCall(task: WireTask, start: number): Promise<WireResult> {
    let mod: Namespace
    try {
      mod = (await import(task.url)) as Namespace
    } catch (err) {
      const reason = describeThrown(err).error
      return rejected(task, start, `cannot load module ${moduleName(task)}: ${reason}`)
    }
    this.modules.set(task.url, mod)
    return this.callExport(mod, task, start)
  }

  private callExport(mod: Namespace, task: WireTask, start: number): WireResult | Promise<WireResult> {
    if (!(task.exportName in mod)) {
      return rejected(task, start, missingExportMessage(task.bundle, task.exportName, Object.keys(mod)))
    }
    const fn = mod[task.exportName]
    if (typeof fn !== 'function')
      return rejected(task, start, notAFunctionMessage(task.bundle, task.exportName, fn))
    let args: unknown[] | string
    try {
      args = callArgs(task.apply, decodeOwned(task.input), task.deps.map(decodeOwned))
    } catch (err) {
      return rejected(task, start, `cannot decode the task's input: ${(err as Error).message}`)
    }
    if (typeof args === 'string') return rejected(task, start, args)
    this.beforeCall?.(task)
    let out: unknown
    try {
      out = fn(...args)
    } catch (err) {
      return this.threw(task, start, err)
    }
    if (isThenable(out)) {
      return Promise.resolve(out).then(
        (v) => finish(task, start, v),
        (err) => this.threw(task, start, err),
      )
    }
    return finish(task, start, out)
  }

  private threw(task: WireTask, start: number, err: unknown): WireResult {
    const { error, stack } = describeThrown(err)
    return {
      id: task.id,
      status: 'threw',
      error,
      stack: this.withoutOwnFrames(stack),
      ms: performance.now() - start,
    }
  }

  /** The submitter cares about its own frames, not the worker's. */
  private withoutOwnFrames(stack: string | undefined): string | undefined {
    if (stack === undefined || !this.ownUrls.some((u) => stack.includes(u))) return stack
    return stack
      .split('\n')
      .filter((line) => !this.ownUrls.some((u) => line.includes(u)))
      .join('\n')
  }
}

/**
 * The submitter's file of a bundle, for messages: the last source of the bundle's inline source
 * map (esbuild puts the entry module last; bundles are built with one unless asked not to), read
 * from the map Node keeps of the import; else the bundle's label (its hash).
 */
function moduleName(task: WireTask): string {
  try {
    const sources = findSourceMap(task.url)?.payload.sources ?? []
    const entry = sources[sources.length - 1]
    if (entry) {
      const url = new URL(entry, task.url)
      return url.protocol === 'file:' ? fileURLToPath(url) : url.href
    }
  } catch {
    // No map, or one that does not parse: the hash says which bundle.
  }
  return bundleLabel(task.bundle)
}

function finish(task: WireTask, start: number, value: unknown): WireResult {
  try {
    return { id: task.id, status: 'ok', value: encodeValue(value, 'result'), ms: performance.now() - start }
  } catch (err) {
    return { id: task.id, status: 'threw', error: (err as Error).message, ms: performance.now() - start }
  }
}

function rejected(task: WireTask, start: number, error: string): WireResult {
  return { id: task.id, status: 'rejected', error, ms: performance.now() - start }
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return (
    (typeof v === 'object' || typeof v === 'function') &&
    v !== null &&
    typeof (v as { then?: unknown }).then === 'function'
  )
}
