/**
 * The sandboxed worker: a Node process inside bubblewrap (see host.ts), with
 * Node's permission model on top. It runs the tasks its parent sends, one
 * at a time in arrival order, and writes each result as soon as it has it,
 * so the parent always knows which task runs (the first unanswered one) and
 * when it began (when the previous result arrived) without trusting anything
 * this process says about time.
 *
 * Wire (frames.ts): tasks and cancels arrive on stdin; results leave on fd 3;
 * stdout and stderr are the task's own (stderr also says why we died).
 * The parent binds one worker to one job, so whatever a task does to this
 * process (monkey-patching, writing to fd 3) reaches only its own job's tasks.
 */
import { writeSync } from 'node:fs'
import { TaskCaller } from '../task-call.ts'
import type { ToWorker, WireResult, WireTask } from '../worker-protocol.ts'
import { decodeToWorker, encodeReady, encodeResult, FrameReader } from './frames.ts'

const RESULTS_FD = 3
// Taken before any task runs: a task that replaces fs.writeSync does not reach these.
const write = writeSync
const pause = new Int32Array(new SharedArrayBuffer(4))
const caller = new TaskCaller([import.meta.url])
const queue: (WireTask | undefined)[] = []
let head = 0
const cancelled = new Set<number>()
let draining = false
let drainScheduled = false

process.setSourceMapsEnabled(true)

function send(bytes: Buffer): void {
  let at = 0
  while (at < bytes.length) {
    try {
      at += write(RESULTS_FD, bytes, at, bytes.length - at)
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'EAGAIN') {
        Atomics.wait(pause, 0, 0, 1)
        continue
      }
      // The parent is gone: nothing left to do.
      process.exit(70)
    }
  }
}

function onMessage(msg: ToWorker): void {
  if (msg.type === 'run') {
    for (const t of msg.tasks) queue.push(t)
    if (!draining && !drainScheduled) {
      drainScheduled = true
      setImmediate(() => {
        drainScheduled = false
        if (!draining) void drain()
      })
    }
  } else if (msg.type === 'cancel') {
    cancelled.add(msg.id)
  }
}

async function drain(): Promise<void> {
  draining = true
  while (head < queue.length) {
    const task = queue[head]!
    queue[head++] = undefined
    let result: WireResult | Promise<WireResult>
    if (cancelled.delete(task.id)) {
      result = { id: task.id, status: 'rejected', error: 'cancelled', ms: 0 }
    } else {
      result = caller.run(task)
      if (result instanceof Promise) result = await result
    }
    send(encodeResult(result))
  }
  queue.length = 0
  head = 0
  cancelled.clear()
  draining = false
}

const reader = new FrameReader()
process.stdin.on('data', (chunk: Buffer) => {
  for (const frame of reader.push(chunk)) onMessage(decodeToWorker(frame))
})
// The parent closed our stdin, or died: stop.
process.stdin.on('end', () => process.exit(0))
send(encodeReady())
