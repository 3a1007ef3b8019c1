/**
 * The process worker: a Node process inside bubblewrap (see host.ts), with
 * Node's permission model on top, or plain for trusted code that needs a
 * working directory of its own (../process-host.ts). It runs the tasks its parent sends, one
 * at a time in arrival order, and writes each result as soon as it has it,
 * so the parent always knows which task runs (the first unanswered one) and
 * when it began (when the previous result arrived) without trusting anything
 * this process says about time.
 *
 * Wire (frames.ts): tasks and cancels arrive on stdin; results leave on fd 3;
 * stdout and stderr are the task's own (stderr also says why we died).
 * A task that comes with a working directory (`cwd`: process slots outside the sandbox) runs
 * with it as the process's cwd; the worker goes back to its own directory afterwards.
 * The parent binds one worker to one job, so whatever a task does to this
 * process (monkey-patching, writing to fd 3) reaches only its own job's tasks.
 */
import { writeSync } from 'node:fs'
import { TaskCaller } from '../task-call.ts'
import {
  REVOKE_AFTER_MS,
  type ToWorker,
  unpackRun,
  type WireResult,
  type WireTask,
} from '../worker-protocol.ts'
import { decodeToWorker, encodeReady, encodeResult, encodeRevoked, FrameReader } from './frames.ts'

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

/** The worker's own directory: where it waits between tasks that have a working directory of their own. */
const home = process.cwd()

function enter(task: WireTask): void {
  try {
    process.chdir(task.cwd!)
  } catch (err) {
    // The pool made the directory before it sent the task: its absence is a bug there, said loudly.
    process.stderr.write(`cannot enter the task's working directory: ${(err as Error).message}\n`)
    process.exit(71)
  }
}

function leave(): void {
  try {
    process.chdir(home)
  } catch {
    process.chdir('/')
  }
}

function onMessage(msg: ToWorker): void {
  if (msg.type === 'run') {
    for (const t of unpackRun(msg)) queue.push(t)
    if (!draining && !drainScheduled) {
      drainScheduled = true
      setImmediate(() => {
        drainScheduled = false
        if (!draining) void drain()
      })
    }
  } else if (msg.type === 'cancel') {
    cancelled.add(msg.id)
  } else if (msg.type === 'revoke') {
    // The parent takes back what has not started (worker-protocol.ts): say which, in order.
    const keep = head
    const dropped: number[] = []
    for (let i = keep; i < queue.length; i++) dropped.push(queue[i]!.id)
    queue.length = keep
    send(encodeRevoked(dropped))
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
      if (task.cwd !== undefined) enter(task)
      result = caller.run(task)
      if (result instanceof Promise) result = await result
      if (task.cwd !== undefined) leave()
    }
    send(encodeResult(result))
    // After a task that took a while, read waiting messages (a revoke, a cancel) before the next:
    // a task that blocked the event loop would otherwise keep the queue behind it to the end.
    if (result.ms >= REVOKE_AFTER_MS && head < queue.length) await new Promise((r) => setImmediate(r))
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
