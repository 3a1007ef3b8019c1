/**
 * A task worker thread: imports bundles (cached per URL), runs the tasks the
 * pool sends, one at a time in arrival order, and sends results back in
 * batches. See worker-protocol.ts for the conversation.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { TaskCaller } from './task-call.ts'
import {
  type FromWorker,
  packResults,
  STATE_RUNNING,
  STATE_STARTED,
  sinceEpoch,
  type ToWorker,
  unpackRun,
  type WireResult,
  type WireTask,
  type WorkerInit,
} from './worker-protocol.ts'

/** Send results at least this often (ms) while a run of quick tasks goes on. */
const FLUSH_MS = 2
const FLUSH_COUNT = 512

const port = parentPort!
const init = workerData as WorkerInit
const state = new Int32Array(init.state)
const caller = new TaskCaller([import.meta.url], (task) => setGpuEnv(task.gpus))
const queue: (WireTask | undefined)[] = []
let head = 0
const cancelled = new Set<number>()
let draining = false
let outbox: WireResult[] = []
let lastFlush = performance.now()
const originalGpuEnv = { visible: process.env.CUDA_VISIBLE_DEVICES, order: process.env.CUDA_DEVICE_ORDER }
let gpuEnvSet = false
/** Ending a task found its id negated: the pool took back what was queued here (worker-protocol.ts). */
let revokedSeen = false
/** The pool's `revoke` message has arrived. */
let revokeRead = false

process.setSourceMapsEnabled(true)

let drainScheduled = false

port.on('message', (msg: ToWorker) => {
  if (msg.type === 'run') {
    // Sent before the pool took them back: they run on another worker.
    if (revokedSeen) return
    for (const t of unpackRun(msg)) queue.push(t)
    // Start after every message already waiting has been queued: draining (and flushing) per
    // message would lock pool and worker into one task per message each way.
    if (!draining && !drainScheduled) {
      drainScheduled = true
      setImmediate(() => {
        drainScheduled = false
        if (!draining) void drain()
      })
    }
  } else if (msg.type === 'revoke') {
    revokeRead = true
    dropQueued()
    answerRevoke()
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
      outbox.push({ id: task.id, status: 'rejected', error: 'cancelled', ms: 0 })
      continue
    }
    Atomics.store(state, STATE_STARTED, Math.floor(sinceEpoch(init.epoch)))
    Atomics.store(state, STATE_RUNNING, task.id)
    let result = caller.run(task)
    if (result instanceof Promise) {
      flush()
      result = await result
    }
    if (Atomics.compareExchange(state, STATE_RUNNING, task.id, 0) !== task.id) {
      Atomics.store(state, STATE_RUNNING, 0)
      revokedSeen = true
      dropQueued()
    }
    outbox.push(result)
    if (revokedSeen) {
      flush()
      answerRevoke()
    } else if (outbox.length >= FLUSH_COUNT || performance.now() - lastFlush >= FLUSH_MS) flush()
  }
  queue.length = 0
  head = 0
  cancelled.clear()
  flush()
  draining = false
}

/** Forgets the tasks queued here: the pool has taken them back. */
function dropQueued(): void {
  for (let i = head; i < queue.length; i++) queue[i] = undefined
  head = queue.length
}

/** Once the task running at the swap has ended and `revoke` has arrived, the pool may send again. */
function answerRevoke(): void {
  if (!revokedSeen || !revokeRead) return
  revokedSeen = false
  revokeRead = false
  port.postMessage({ type: 'revoked' } satisfies FromWorker)
}

function flush(): void {
  lastFlush = performance.now()
  if (outbox.length === 0) return
  const transfer: ArrayBuffer[] = []
  const msg: FromWorker = packResults(outbox, transfer)
  port.postMessage(msg, transfer)
  outbox = []
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
