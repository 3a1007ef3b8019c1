/**
 * A pool of worker threads running function tasks (trusted code: a task
 * shares the daemon's process, though not its heap).
 *
 * - Up to `size` workers, started on demand, each with a V8 heap limit
 *   (`resourceLimits.maxOldGenerationSizeMb`); a task only runs on a worker
 *   whose limit is its job's `memoryMB`, so workers are replaced when jobs
 *   with other limits come.
 * - Tasks queue here without bound. Each worker gets them in batches, and for
 *   quick functions keeps several in flight (about 2 ms of work, measured per
 *   function), so tiny tasks cost one message per batch, not two per task.
 * - A task queued on a worker behind one that has run REVOKE_AFTER_MS while
 *   another worker with the same heap limit idles is taken back and run there
 *   (worker-protocol.ts), so a quick task does not wait out a long one that
 *   happened to come first.
 * - A task past its time limit, or cancelled while running, has its worker
 *   terminated; a worker that dies (process.exit, uncaught error, out of
 *   memory) fails the task it was running with `crashed`. The tasks queued
 *   behind it on that worker go back to the pool's queue, and a new worker is
 *   started. Nothing a task does makes run() reject.
 */
import type { TaskOutcome } from '../domain/types.ts'
import {
  hasRoom,
  packRun,
  REVOKE_AFTER_MS,
  Recheck,
  STATE_RUNNING,
  TaskCosts,
  type ToWorker,
  toOutcome,
  type WireResult,
  type WireTask,
} from './worker-protocol.ts'
import { deathReason, readRunning, type Slot, startWorker } from './worker-slot.ts'

export interface PoolTask {
  bundle: string
  /** file: URL of the bundle's module. */
  url: string
  exportName: string
  call?: 'map' | 'apply'
  input: Uint8Array
  depValues: Uint8Array[]
  /** 0: no limit. */
  timeoutMs: number
  /** V8 old-space limit for the worker; 0: the pool's default. */
  memoryMB: number
  /** GPU indexes the task holds (exposed to it as CUDA_VISIBLE_DEVICES in the worker's process.env). */
  gpus?: number[]
}

export interface WorkerPoolOptions {
  size: number
  /** Heap limit for tasks whose job sets no memoryMB (default 4096). */
  defaultMemoryMB?: number
  /** Most tasks in flight to one worker (default 64). */
  maxInFlight?: number
  /** The worker entry (default ./worker.ts next to this file; a bundled daemon passes its own). */
  workerUrl?: URL
}

export interface PoolStats {
  workers: number
  queued: number
  inFlight: number
  /** Tasks taken back from a busy worker for an idle one, since the pool started. */
  revoked: number
  /** Messages of tasks sent to workers, and the tasks in them, since the pool started. */
  batches: number
  batchedTasks: number
}

interface Pending {
  id: number
  wire: WireTask
  key: string
  timeoutMs: number
  memoryMB: number
  resolve: (o: TaskOutcome) => void
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  /** Times a worker died with this task queued on it and no task running to blame. */
  bystanderCrashes: number
  slot: Slot<Pending> | undefined
  done: boolean
}

const MAX_BYSTANDER_CRASHES = 3
/** An idle worker that has loaded more bundles than this is replaced (modules stay in memory). */
const MAX_BUNDLES_PER_WORKER = 32
const POLL_MS = 20

export class WorkerPool {
  readonly size: number
  private readonly defaultMemoryMB: number
  private readonly workerUrl: URL
  private readonly slots: Slot<Pending>[] = []
  private queue: Pending[] = []
  private qHead = 0
  private nextId = 1
  private closed = false
  private pumpScheduled = false
  /** The next look for tasks to take back for an idle worker (rebalance). */
  private readonly recheck = new Recheck(() => this.rebalance())
  /** Tasks taken back from a worker for an idle one. */
  private revokedCount = 0
  private batches = 0
  private batchedTasks = 0
  /** Mean run time per bundle URL and export, to size batches. */
  private readonly costs: TaskCosts

  constructor(opts: WorkerPoolOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1)
      throw new RangeError(`pool size must be >= 1, got ${opts.size}`)
    this.size = opts.size
    this.defaultMemoryMB = opts.defaultMemoryMB ?? 4096
    this.costs = new TaskCosts(opts.maxInFlight ?? 64)
    this.workerUrl = opts.workerUrl ?? new URL('./worker.ts', import.meta.url)
  }

  run(task: PoolTask, signal?: AbortSignal): Promise<TaskOutcome> {
    if (this.closed) return Promise.resolve({ status: 'crashed', error: 'executor closed', durationMs: 0 })
    if (signal?.aborted) return Promise.resolve({ status: 'rejected', error: 'cancelled', durationMs: 0 })
    return new Promise((resolve) => {
      const id = this.nextId
      this.nextId = id >= 0x7fffffff ? 1 : id + 1
      const wire: WireTask = {
        id,
        bundle: task.bundle,
        url: task.url,
        exportName: task.exportName,
        apply: task.call === 'apply',
        input: task.input,
        deps: task.depValues,
      }
      if (task.gpus !== undefined && task.gpus.length > 0) wire.gpus = task.gpus.join(',')
      const p: Pending = {
        id,
        wire,
        key: `${task.url}#${task.exportName}`,
        timeoutMs: Math.max(task.timeoutMs, 0),
        memoryMB: task.memoryMB > 0 ? Math.ceil(task.memoryMB) : this.defaultMemoryMB,
        resolve,
        signal,
        onAbort: undefined,
        bystanderCrashes: 0,
        slot: undefined,
        done: false,
      }
      if (signal !== undefined) {
        p.onAbort = () => this.cancel(p)
        signal.addEventListener('abort', p.onAbort, { once: true })
      }
      this.queue.push(p)
      this.schedulePump()
    })
  }

  stats(): PoolStats {
    let inFlight = 0
    for (const s of this.slots) inFlight += s.inFlight.length
    return {
      workers: this.slots.length,
      queued: this.queue.length - this.qHead,
      inFlight,
      revoked: this.revokedCount,
      batches: this.batches,
      batchedTasks: this.batchedTasks,
    }
  }

  /** Fails every queued and running task with `crashed` ('executor closed') and stops the workers. */
  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.recheck.cancel()
    const outcome: TaskOutcome = { status: 'crashed', error: 'executor closed', durationMs: 0 }
    for (let i = this.qHead; i < this.queue.length; i++) this.settle(this.queue[i], outcome)
    this.queue = []
    this.qHead = 0
    const stopping = [...this.slots].map((slot) => {
      for (const p of slot.inFlight) this.settle(p, outcome)
      return this.retire(slot)
    })
    await Promise.all(stopping)
  }

  // --- dispatch -------------------------------------------------------------

  /** Tasks submitted in one go (the same tick) leave together, in fair-sized batches. */
  private schedulePump(): void {
    if (this.pumpScheduled) return
    this.pumpScheduled = true
    queueMicrotask(() => {
      this.pumpScheduled = false
      this.pump()
    })
  }

  private pump(): void {
    while (this.qHead < this.queue.length && !this.closed) {
      const first = this.queue[this.qHead]
      if (first.done) {
        this.qHead++
        continue
      }
      const cap = this.costs.inFlightCap(first.key)
      let slot: Slot<Pending> | undefined
      try {
        slot = this.slotFor(first.memoryMB, cap)
      } catch (err) {
        this.qHead++
        this.settle(first, crashed(`cannot start a worker thread: ${(err as Error).message}`))
        continue
      }
      if (slot === undefined) break
      const share = Math.ceil((this.queue.length - this.qHead) / this.size)
      this.sendBatch(slot, Math.max(1, Math.min(cap - slot.inFlight.length, share)))
    }
    if (this.qHead === this.queue.length) {
      this.queue = []
      this.qHead = 0
    } else if (this.qHead > 1024 && this.qHead * 2 > this.queue.length) {
      this.queue = this.queue.slice(this.qHead)
      this.qHead = 0
    }
    this.rebalance()
  }

  /**
   * While a worker idles and nothing is queued here, takes back the tasks queued on other workers
   * behind a task that has run REVOKE_AFTER_MS, for the idle one; otherwise looks again when the
   * first running task reaches it.
   */
  private rebalance(): void {
    if (this.closed || this.qHead < this.queue.length) return
    // Only a started worker with the same heap limit can take them: replacing one or starting
    // one costs more than the wait it would save.
    let wait = Number.POSITIVE_INFINITY
    for (const s of this.slots) {
      if (s.inFlight.length < 2 || s.revoking || !this.idles(s.memoryMB)) continue
      const { id, elapsed } = readRunning(s)
      if (id === 0) {
        // Between two tasks, or its results on their way: look again shortly.
        wait = Math.min(wait, REVOKE_AFTER_MS)
      } else if (elapsed >= REVOKE_AFTER_MS) {
        if (this.revoke(s, id)) return // requeue pumped, and looked again
      } else wait = Math.min(wait, REVOKE_AFTER_MS - elapsed)
    }
    this.recheck.after(wait)
  }

  /** Whether a started worker with this heap limit idles (rebalance runs after every pump: no allocation). */
  private idles(memoryMB: number): boolean {
    for (const s of this.slots)
      if (s.inFlight.length === 0 && !s.revoking && s.memoryMB === memoryMB) return true
    return false
  }

  /** Takes back the tasks queued on `slot` behind `running`, if it still runs it (worker-protocol.ts). */
  private revoke(slot: Slot<Pending>, running: number): boolean {
    const k = slot.inFlight.findIndex((p) => p.id === running)
    if (k < 0 || k === slot.inFlight.length - 1) return false
    if (Atomics.compareExchange(slot.state, STATE_RUNNING, running, -running) !== running) return false
    const back = slot.inFlight.splice(k + 1).filter((p) => !p.done)
    slot.revoking = true
    this.send(slot, { type: 'revoke' })
    this.revokedCount += back.length
    this.requeue(back)
    return true
  }

  private onRevoked(slot: Slot<Pending>): void {
    slot.revoking = false
    if (slot.inFlight.length === 0) this.idle(slot)
    this.pump()
  }

  /** Sends up to `n` tasks from the head of the queue (those with the slot's heap limit) as one message. */
  private sendBatch(slot: Slot<Pending>, n: number): void {
    const sent: Pending[] = []
    const batch: WireTask[] = []
    const transfer: ArrayBuffer[] = []
    while (batch.length < n && this.qHead < this.queue.length) {
      const p = this.queue[this.qHead]
      if (!p.done) {
        if (p.memoryMB !== slot.memoryMB) break
        sent.push(p)
        batch.push(p.wire)
      }
      this.qHead++
    }
    try {
      this.send(slot, packRun(batch, transfer), transfer)
    } catch (err) {
      // An input that cannot be cloned (a detached buffer): those tasks fail, the worker is fine.
      for (const p of sent)
        this.settle(p, crashed(`cannot send the task to its worker: ${(err as Error).message}`))
      return
    }
    this.batches++
    this.batchedTasks += sent.length
    const wasIdle = slot.inFlight.length === 0
    for (const p of sent) {
      p.slot = slot
      slot.inFlight.push(p)
      slot.bundles.add(p.wire.url)
    }
    if (wasIdle) this.startedWork(slot)
  }

  /** The least busy worker with this heap limit and room, starting or replacing one if that helps. */
  private slotFor(memoryMB: number, cap: number): Slot<Pending> | undefined {
    let best: Slot<Pending> | undefined
    let idleOther: Slot<Pending> | undefined
    /** A worker with this limit below its cap: it takes more once down to half (hasRoom). */
    let soon = false
    for (const s of this.slots) {
      if (s.memoryMB !== memoryMB) {
        if (s.inFlight.length === 0 && !s.revoking) idleOther ??= s
      } else if (!s.revoking && s.inFlight.length < cap) {
        soon = true
        if (
          hasRoom(s.inFlight.length, cap) &&
          (best === undefined || s.inFlight.length < best.inFlight.length)
        )
          best = s
      }
    }
    if (best !== undefined && best.inFlight.length === 0) return best
    if (this.slots.length < this.size) return this.spawn(memoryMB)
    if (best !== undefined) return best
    if (idleOther !== undefined && !soon) {
      void this.retire(idleOther)
      return this.spawn(memoryMB)
    }
    return undefined
  }

  private send(slot: Slot<Pending>, msg: ToWorker, transfer: ArrayBuffer[] = []): void {
    slot.worker.postMessage(msg, transfer)
  }

  // --- workers --------------------------------------------------------------

  private spawn(memoryMB: number): Slot<Pending> {
    const slot = startWorker<Pending>(this.workerUrl, memoryMB, {
      results: (sl, results) => this.onResults(sl, results),
      exit: (sl, code) => this.onExit(sl, code),
      revoked: (sl) => this.onRevoked(sl),
    })
    this.slots.push(slot)
    return slot
  }

  /** Stops a worker on purpose; its tasks must already be settled or moved. */
  private retire(slot: Slot<Pending>): Promise<void> {
    this.forget(slot)
    return slot.worker.terminate().then(
      () => undefined,
      () => undefined,
    )
  }

  private forget(slot: Slot<Pending>): void {
    slot.dead = true
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    slot.timer = undefined
    const i = this.slots.indexOf(slot)
    if (i >= 0) this.slots.splice(i, 1)
  }

  private startedWork(slot: Slot<Pending>): void {
    slot.worker.ref()
    this.armHead(slot)
  }

  private onResults(slot: Slot<Pending>, results: WireResult[]): void {
    for (const r of results) {
      // Results come in the order tasks were sent, so this is nearly always the first.
      let p: Pending | undefined
      if (slot.inFlight.length > 0 && slot.inFlight[0].id === r.id) {
        p = slot.inFlight.shift()!
      } else {
        const i = slot.inFlight.findIndex((q) => q.id === r.id)
        if (i < 0) continue
        p = slot.inFlight.splice(i, 1)[0]
      }
      if (r.status !== 'rejected') this.costs.learn(p.key, r.ms)
      this.settle(p, toOutcome(r))
    }
    if (slot.inFlight.length === 0) this.idle(slot)
    else this.armHead(slot)
    this.pump()
  }

  /** A worker with nothing in flight: lets the process exit, or replaces it once it has loaded too many bundles. */
  private idle(slot: Slot<Pending>): void {
    slot.worker.unref()
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    slot.timer = undefined
    if (slot.bundles.size > MAX_BUNDLES_PER_WORKER && !slot.revoking) void this.retire(slot)
  }

  private onExit(slot: Slot<Pending>, code: number): void {
    if (slot.dead) return
    this.forget(slot)
    const reason = deathReason(slot, code)
    const { id: running, elapsed: durationMs } = readRunning(slot)
    // A death no running task explains (the worker failed to start, or died between tasks) counts
    // against every task it held, so a worker that can never run them does not loop forever.
    const blamed = slot.inFlight.some((p) => p.id === running && !p.done)
    const requeue: Pending[] = []
    for (const p of slot.inFlight) {
      if (p.done) continue
      if (p.id === running) {
        this.settle(p, { status: 'crashed', error: reason, durationMs })
      } else if (!blamed && ++p.bystanderCrashes >= MAX_BYSTANDER_CRASHES) {
        this.settle(p, {
          status: 'crashed',
          error: `${reason} (the task's worker died ${p.bystanderCrashes} times)`,
          durationMs: 0,
        })
      } else {
        requeue.push(p)
      }
    }
    slot.inFlight = []
    this.requeue(requeue)
  }

  /** Puts tasks back at the head of the queue, in order. */
  private requeue(tasks: Pending[]): void {
    for (const p of tasks) p.slot = undefined
    if (tasks.length > 0) this.queue.splice(this.qHead, 0, ...tasks)
    this.pump()
  }

  // --- time limits and cancellation ------------------------------------------

  /** Arms the slot's timer for the earliest moment its head task could pass its limit. */
  private armHead(slot: Slot<Pending>): void {
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    slot.timer = undefined
    const headTask = slot.inFlight.find((p) => !p.done)
    if (headTask === undefined || headTask.timeoutMs === 0) return
    this.armAt(slot, headTask.timeoutMs)
  }

  private armAt(slot: Slot<Pending>, delayMs: number): void {
    if (slot.timer !== undefined) clearTimeout(slot.timer)
    slot.timer = setTimeout(() => this.onTimer(slot), Math.max(1, Math.ceil(delayMs)))
    slot.timer.unref()
  }

  private onTimer(slot: Slot<Pending>): void {
    slot.timer = undefined
    if (slot.dead) return
    const { id, elapsed } = readRunning(slot)
    const p = id === 0 ? undefined : slot.inFlight.find((q) => q.id === id)
    if (p?.done) {
      // Cancelled in the instant it started: it must not keep the worker.
      this.stopRunning(slot, p, { status: 'rejected', error: 'cancelled', durationMs: elapsed })
      return
    }
    if (p === undefined) {
      // Between tasks, or results are on their way: look again soon.
      if (slot.inFlight.some((q) => !q.done && q.timeoutMs > 0)) this.armAt(slot, POLL_MS)
      return
    }
    if (p.timeoutMs === 0) return
    if (elapsed + 0.5 >= p.timeoutMs) {
      this.stopRunning(slot, p, {
        status: 'timeout',
        error: `task timed out after ${p.timeoutMs} ms`,
        durationMs: elapsed,
      })
    } else {
      this.armAt(slot, p.timeoutMs - elapsed)
    }
  }

  private cancel(p: Pending): void {
    if (p.done) return
    const slot = p.slot
    const outcome: TaskOutcome = { status: 'rejected', error: 'cancelled', durationMs: 0 }
    if (slot === undefined || slot.dead) {
      this.settle(p, outcome)
      return
    }
    const { id, elapsed } = readRunning(slot)
    if (id === p.id) {
      this.stopRunning(slot, p, { ...outcome, durationMs: elapsed })
    } else {
      this.settle(p, outcome)
      this.send(slot, { type: 'cancel', id: p.id })
    }
  }

  /** Terminates a worker to stop the task it runs; the others it held go back to the queue. */
  private stopRunning(slot: Slot<Pending>, p: Pending, outcome: TaskOutcome): void {
    this.settle(p, outcome)
    const others = slot.inFlight.filter((q) => !q.done)
    slot.inFlight = []
    void this.retire(slot)
    this.requeue(others)
  }

  private settle(p: Pending, outcome: TaskOutcome): void {
    if (p.done) return
    p.done = true
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort)
    p.resolve(outcome)
  }
}

function crashed(error: string): TaskOutcome {
  return { status: 'crashed', error, durationMs: 0 }
}
