/**
 * One worker thread of the pool, with what the pool tracks about it: the
 * tasks sent to it and not yet answered (in order), its heap limit, its
 * time-limit timer, and the state it shares (which task runs, since when).
 */
import { Worker } from 'node:worker_threads'
import {
  type FromWorker,
  STATE_RUNNING,
  STATE_STARTED,
  STATE_WORDS,
  sinceEpoch,
  unpackResults,
  type WireResult,
  type WorkerInit,
} from './worker-protocol.ts'

export interface Slot<T> {
  worker: Worker
  memoryMB: number
  state: Int32Array
  epoch: number
  /** Sent and not answered yet, in the order sent. */
  inFlight: T[]
  timer: NodeJS.Timeout | undefined
  /** Terminated or exited: ignore whatever it still says. */
  dead: boolean
  lastError: Error | undefined
  /** Bundles it has been sent: modules cannot be unloaded, so a worker that loaded many is replaced. */
  bundles: Set<string>
  /** Its queued tasks were taken back and it has not answered `revoked` yet: send it no tasks. */
  revoking: boolean
}

export interface SlotEvents<T> {
  results(slot: Slot<T>, results: WireResult[]): void
  exit(slot: Slot<T>, code: number): void
  /** It has dropped the tasks taken back from it (worker-protocol.ts). */
  revoked(slot: Slot<T>): void
}

/** Starts a worker with a V8 heap limit; it holds the process open only while it has work (see `ref`). */
export function startWorker<T>(workerUrl: URL, memoryMB: number, events: SlotEvents<T>): Slot<T> {
  const sab = new SharedArrayBuffer(STATE_WORDS * Int32Array.BYTES_PER_ELEMENT)
  const init: WorkerInit = { state: sab, epoch: performance.timeOrigin + performance.now() }
  const worker = new Worker(workerUrl, {
    name: 'gridnode-task',
    workerData: init,
    resourceLimits: { maxOldGenerationSizeMb: memoryMB },
  })
  const slot: Slot<T> = {
    worker,
    memoryMB,
    state: new Int32Array(sab),
    epoch: init.epoch,
    inFlight: [],
    timer: undefined,
    dead: false,
    lastError: undefined,
    bundles: new Set(),
    revoking: false,
  }
  worker.on('message', (msg: FromWorker) => {
    // Task code can post to the parent port too: only our results count.
    if (slot.dead) return
    if (msg?.type === 'results') {
      const results = unpackResults(msg)
      if (results !== undefined) events.results(slot, results)
    } else if (msg?.type === 'revoked' && slot.revoking) events.revoked(slot)
  })
  worker.on('error', (err) => {
    slot.lastError = err
  })
  worker.on('exit', (code) => events.exit(slot, code))
  worker.unref()
  return slot
}

/** The task the worker runs now (0: none; negated ids are running ones too, see revoke) and for how long (ms). */
export function readRunning(slot: Slot<unknown>): { id: number; elapsed: number } {
  for (;;) {
    const word = Atomics.load(slot.state, STATE_RUNNING)
    const id = Math.abs(word)
    const started = Atomics.load(slot.state, STATE_STARTED)
    if (Atomics.load(slot.state, STATE_RUNNING) === word) {
      return { id, elapsed: id === 0 ? 0 : Math.max(0, sinceEpoch(slot.epoch) - started) }
    }
  }
}

/** Why a worker that exited on its own died, for the `crashed` outcome. */
export function deathReason(slot: Slot<unknown>, code: number): string {
  const err = slot.lastError
  if ((err as NodeJS.ErrnoException | undefined)?.code === 'ERR_WORKER_OUT_OF_MEMORY') {
    return `worker ran out of memory (limit ${slot.memoryMB} MB)`
  }
  if (err !== undefined) return `worker crashed: ${err.message}`
  return `worker exited with code ${code}`
}
