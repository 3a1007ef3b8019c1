/**
 * A task worker thread: imports bundles (cached per URL), runs the tasks the
 * pool sends, one at a time in arrival order, and sends results back in
 * batches. See worker-protocol.ts for the conversation.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { decodeOwned, encodeValue } from './values.ts'
import {
  callArgs,
  describeThrown,
  type FromWorker,
  missingExportMessage,
  notAFunctionMessage,
  STATE_RUNNING,
  STATE_STARTED,
  sinceEpoch,
  type ToWorker,
  type WireResult,
  type WireTask,
  type WorkerInit,
} from './worker-protocol.ts'

type Namespace = Record<string, unknown>

/** Send results at least this often (ms) while a run of quick tasks goes on. */
const FLUSH_MS = 2
const FLUSH_COUNT = 512
/** Results bigger than this travel by transfer, not copy. */
const TRANSFER_BYTES = 4096

const SELF = import.meta.url
const port = parentPort!
const init = workerData as WorkerInit
const state = new Int32Array(init.state)
const modules = new Map<string, Namespace>()
const queue: (WireTask | undefined)[] = []
let head = 0
const cancelled = new Set<number>()
let draining = false
let outbox: WireResult[] = []
let transfers: ArrayBuffer[] = []
let lastFlush = performance.now()
const originalGpuEnv = { visible: process.env.CUDA_VISIBLE_DEVICES, order: process.env.CUDA_DEVICE_ORDER }
let gpuEnvSet = false

process.setSourceMapsEnabled(true)

let drainScheduled = false

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'run') {
    for (const t of msg.tasks) queue.push(t)
    // Start after every message already waiting has been queued: draining (and flushing) per
    // message would lock pool and worker into one task per message each way.
    if (!draining && !drainScheduled) {
      drainScheduled = true
      setImmediate(() => {
        drainScheduled = false
        if (!draining) void drain()
      })
    }
  } else if (draining || drainScheduled) {
    cancelled.add(msg.id)
  }
})

async function drain(): Promise<void> {
  draining = true
  while (head < queue.length) {
    const task = queue[head]!
    queue[head++] = undefined
    if (cancelled.delete(task.id)) {
      push({ id: task.id, status: 'rejected', error: 'cancelled', ms: 0 })
      continue
    }
    Atomics.store(state, STATE_STARTED, Math.floor(sinceEpoch(init.epoch)))
    Atomics.store(state, STATE_RUNNING, task.id)
    let result = runTask(task)
    if (result instanceof Promise) {
      flush()
      result = await result
    }
    Atomics.store(state, STATE_RUNNING, 0)
    push(result)
    if (outbox.length >= FLUSH_COUNT || performance.now() - lastFlush >= FLUSH_MS) flush()
  }
  queue.length = 0
  head = 0
  cancelled.clear()
  flush()
  draining = false
}

function push(r: WireResult): void {
  outbox.push(r)
  const v = r.value
  if (
    v !== undefined &&
    v.byteLength > TRANSFER_BYTES &&
    v.byteOffset === 0 &&
    v.byteLength === v.buffer.byteLength
  ) {
    transfers.push(v.buffer as ArrayBuffer)
  }
}

function flush(): void {
  lastFlush = performance.now()
  if (outbox.length === 0) return
  const msg: FromWorker = { type: 'results', results: outbox }
  port.postMessage(msg, transfers)
  outbox = []
  transfers = []
}

function runTask(task: WireTask): WireResult | Promise<WireResult> {
  const start = performance.now()
  const mod = modules.get(task.url)
  return mod === undefined ? loadThenCall(task, start) : callExport(mod, task, start)
}

async function loadThenCall(task: WireTask, start: number): Promise<WireResult> {
  let mod: Namespace
  try {
    mod = (await import(task.url)) as Namespace
  } catch (err) {
    const reason = describeThrown(err).error
    return rejected(task, start, `cannot load module ${task.bundle.slice(0, 12)}: ${reason}`)
  }
  modules.set(task.url, mod)
  return callExport(mod, task, start)
}

function callExport(mod: Namespace, task: WireTask, start: number): WireResult | Promise<WireResult> {
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
  setGpuEnv(task.gpus)
  let out: unknown
  try {
    out = fn(...args)
  } catch (err) {
    return threw(task, start, err)
  }
  if (isThenable(out)) {
    return Promise.resolve(out).then(
      (v) => finish(task, start, v),
      (err) => threw(task, start, err),
    )
  }
  return finish(task, start, out)
}

function finish(task: WireTask, start: number, value: unknown): WireResult {
  try {
    return { id: task.id, status: 'ok', value: encodeValue(value, 'result'), ms: performance.now() - start }
  } catch (err) {
    return { id: task.id, status: 'threw', error: (err as Error).message, ms: performance.now() - start }
  }
}

function threw(task: WireTask, start: number, err: unknown): WireResult {
  const { error, stack } = describeThrown(err)
  return {
    id: task.id,
    status: 'threw',
    error,
    stack: withoutOwnFrames(stack),
    ms: performance.now() - start,
  }
}

/** The submitter cares about its own frames, not the worker's. */
function withoutOwnFrames(stack: string | undefined): string | undefined {
  if (stack === undefined || !stack.includes(SELF)) return stack
  return stack
    .split('\n')
    .filter((line) => !line.includes(SELF))
    .join('\n')
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

/** GPU tasks see their GPUs in the worker's (private) process.env; others see the original values. */
function setGpuEnv(gpus: string | undefined): void {
  if (gpus !== undefined) {
    process.env.CUDA_VISIBLE_DEVICES = gpus
    process.env.CUDA_DEVICE_ORDER = 'PCI_BUS_ID'
    gpuEnvSet = true
  } else if (gpuEnvSet) {
    restoreEnv('CUDA_VISIBLE_DEVICES', originalGpuEnv.visible)
    restoreEnv('CUDA_DEVICE_ORDER', originalGpuEnv.order)
    gpuEnvSet = false
  }
}

function restoreEnv(name: string, value: string | undefined): void {
  if (value === undefined) delete process.env[name]
  else process.env[name] = value
}
