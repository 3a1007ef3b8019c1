/**
 * Function tasks in Node processes (sandbox-worker.ts), over a host that
 * starts them: inside bubblewrap (host.ts) when the code is not trusted, or
 * plain (../process-host.ts) for own tasks that need a working directory of
 * their own. A drop-in for the worker-thread pool.
 *
 * - At most `size` workers run tasks at once, each bound to one job (and
 *   its heap limit and GPUs) for its whole life: tasks of two jobs never
 *   share a process, so a task can reach nothing of another job's.
 * - Spare workers are started ahead of time; binding a spare to a job costs a
 *   file copy (the bundle). A worker is replaced after a crash, a limit hit,
 *   a timeout, `maxTasksPerWorker` tasks, or `idleMs` without work; a fresh
 *   spare is started in the background each time one is taken.
 * - Quick functions get several tasks per message (about 2 ms of work, as
 *   the thread pool does); the worker answers each task as it ends, in order.
 *   The first unanswered task is the one running, since the previous answer
 *   came (or the batch was sent): time limits are measured here, never read
 *   from the worker.
 * - A worker that breaks the wire (an answer out of order, a bad frame) is
 *   killed: its running task ends `crashed`, the rest of its queue goes back.
 * - Working directories: a task with `cwd` runs with that (host) directory as
 *   its process's cwd (plain processes; the executor makes, stages and
 *   removes it). A `dedicated` task gets a fresh sandbox of its own, started
 *   with its staged inputs bound read-only under /work, its cwd; when it ends
 *   the sandbox is killed, `dedicated.end` reads its /work (outputs), and only
 *   then is the sandbox removed.
 */
import type { OutputFile, TaskOutcome } from '../../domain/types.ts'
import type { PoolTask } from '../worker-pool.ts'
import {
  hasRoom,
  packRun,
  REVOKE_AFTER_MS,
  Recheck,
  TaskCosts,
  toOutcome,
  type WireResult,
  type WireTask,
} from '../worker-protocol.ts'
import { decodeFromSandbox, encodeToWorker, FrameError, FrameReader } from './frames.ts'
import type { SandboxProcess } from './host.ts'

/** What starts the pool's workers: a SandboxHost (bubblewrap) or a ProcessHost (plain). */
export interface WorkerHost {
  readonly limits: { memoryMB: number; cpuSeconds: number }
  startWorker(o: {
    memoryMB: number
    gpus: number[] | undefined
    network?: boolean
    binds?: Array<[string, string]>
  }): SandboxProcess
  /** Makes the bundle importable by the worker; returns the URL it imports. */
  placeBundle(proc: SandboxProcess, hash: string, hostPath: string): string
}

export interface SandboxPoolTask extends PoolTask {
  job: string
  /** Host path of the bundle file. */
  bundlePath: string
  /** The host's network instead of none (trust policy `network`). */
  network?: boolean
  /** The task's working directory (a host path, made and staged by the caller). */
  cwd?: string
  /** A worker of its own, started with these read-only binds; `end` sees its work dir once it is dead. */
  dedicated?: {
    binds: Array<[string, string]>
    /** Outputs from the (dead) worker's work dir, for an `ok` outcome; a throw fails the task. */
    end?: (work: string) => Promise<OutputFile[]>
  }
}

export interface SandboxPoolOptions {
  size: number
  host: WorkerHost
  /** Workers kept started and unbound, ready for the next job (default: size). */
  spares?: number
  /** Tasks one worker runs before it is replaced (default 10,000). */
  maxTasksPerWorker?: number
  /** A bound worker idle this long is replaced by a fresh spare (default 2,000 ms). */
  idleMs?: number
  /** Most tasks in flight to one worker (default 64). */
  maxInFlight?: number
}

/** Handle to a task in the pool, for suspension and eviction. */
export interface SandboxTaskRef {
  id: number
}

interface Pending {
  id: number
  wire: WireTask
  key: string
  costKey: string
  job: string
  bundlePath: string
  memoryMB: number
  gpus: number[] | undefined
  network: boolean
  timeoutMs: number
  dedicated: SandboxPoolTask['dedicated']
  resolve: (o: TaskOutcome) => void
  signal: AbortSignal | undefined
  onAbort: (() => void) | undefined
  bystanderCrashes: number
  proc: Proc | undefined
  suspended: boolean
  done: boolean
}

interface Proc {
  sbx: SandboxProcess
  /** Bound job key; undefined for a spare. */
  key: string | undefined
  memoryMB: number
  gpus: string
  network: boolean
  bundleUrl: string | undefined
  ready: boolean
  inFlight: Pending[]
  /** When the head of inFlight started, on this process's clock (valid once ready). */
  headSince: number
  timer: NodeJS.Timeout | undefined
  idleTimer: NodeJS.Timeout | undefined
  pausedAt: number | undefined
  dead: boolean
  tasks: number
  reader: FrameReader
  stderr: string
  startedAt: number
  /** Started for one dedicated task: retired once it ends. */
  dedicated: boolean
  /** A dedicated task's ending (outputs read from its work dir): the worker's dirs stay until it is done. */
  ending: Promise<void> | undefined
  /** Sent `revoke`, not answered yet: it gets no tasks meanwhile. */
  revoking: boolean
}

const MAX_BYSTANDER_CRASHES = 3
const STDERR_KEEP = 4096

export class SandboxPool {
  readonly size: number
  private readonly host: WorkerHost
  private readonly spareTarget: number
  private readonly maxTasks: number
  private readonly idleMs: number
  private readonly procs: Proc[] = []
  private queue: Pending[] = []
  private readonly byId = new Map<number, Pending>()
  private nextId = 1
  private closed = false
  private pumpScheduled = false
  /** The next look for tasks to take back for an idle worker (rebalance). */
  private readonly recheck = new Recheck(() => this.rebalance())
  /** Tasks taken back from a worker for an idle one. */
  private revokedCount = 0
  private readonly costs: TaskCosts
  /** Start cost of the last worker (ms from spawn to its first frame), for figures. */
  lastStartMs = 0
  /** Workers in a row that died before they were up: past 3, no more spares are started ahead. */
  private startFailures = 0

  constructor(opts: SandboxPoolOptions) {
    if (!Number.isInteger(opts.size) || opts.size < 1)
      throw new RangeError(`pool size must be >= 1, got ${opts.size}`)
    this.size = opts.size
    this.host = opts.host
    this.spareTarget = Math.max(0, opts.spares ?? opts.size)
    this.maxTasks = Math.max(1, opts.maxTasksPerWorker ?? 10_000)
    this.idleMs = Math.max(1, opts.idleMs ?? 2000)
    this.costs = new TaskCosts(opts.maxInFlight ?? 64)
    this.ensureSpares()
  }

  run(task: SandboxPoolTask, signal?: AbortSignal, ref?: SandboxTaskRef): Promise<TaskOutcome> {
    if (this.closed) return Promise.resolve({ status: 'crashed', error: 'executor closed', durationMs: 0 })
    if (signal?.aborted) return Promise.resolve({ status: 'rejected', error: 'cancelled', durationMs: 0 })
    return new Promise((resolve) => {
      const id = this.nextId
      this.nextId = id >= 0x7fffffff ? 1 : id + 1
      if (ref !== undefined) ref.id = id
      const memoryMB = task.memoryMB > 0 ? Math.ceil(task.memoryMB) : this.host.limits.memoryMB
      const gpus = task.gpus !== undefined && task.gpus.length > 0 ? task.gpus : undefined
      const wire: WireTask = {
        id,
        bundle: task.bundle,
        url: '',
        exportName: task.exportName,
        apply: task.call === 'apply',
        input: task.input,
        deps: task.depValues,
      }
      if (task.cwd !== undefined) wire.cwd = task.cwd
      const p: Pending = {
        id,
        wire,
        // A dedicated task's key is its own: no other task ever shares its worker.
        key: `${task.job}\n${task.bundle}\n${memoryMB}\n${gpus?.join(',') ?? ''}\n${task.network === true}${task.dedicated ? `\n#${id}` : ''}`,
        costKey: `${task.bundle}#${task.exportName}`,
        job: task.job,
        bundlePath: task.bundlePath,
        memoryMB,
        gpus,
        network: task.network === true,
        timeoutMs: Math.max(task.timeoutMs, 0),
        dedicated: task.dedicated,
        resolve,
        signal,
        onAbort: undefined,
        bystanderCrashes: 0,
        proc: undefined,
        suspended: false,
        done: false,
      }
      if (signal !== undefined) {
        p.onAbort = () => this.cancel(p)
        signal.addEventListener('abort', p.onAbort, { once: true })
      }
      this.byId.set(id, p)
      this.queue.push(p)
      this.schedulePump()
    })
  }

  stats(): { workers: number; spares: number; queued: number; inFlight: number; revoked: number } {
    let inFlight = 0
    for (const w of this.procs) inFlight += w.inFlight.length
    return {
      workers: this.procs.filter((w) => w.key !== undefined).length,
      spares: this.procs.filter((w) => w.key === undefined).length,
      queued: this.queue.length,
      inFlight,
      revoked: this.revokedCount,
    }
  }

  /** Resolves once `n` spare workers are up (for benchmarks and tests). */
  async warm(n = this.spareTarget, timeoutMs = 20_000): Promise<void> {
    const deadline = Date.now() + timeoutMs
    while (this.procs.filter((w) => w.key === undefined && w.ready).length < n) {
      if (Date.now() > deadline || this.closed)
        throw new Error(`sandboxed workers not ready after ${timeoutMs} ms`)
      await new Promise((r) => setTimeout(r, 10))
    }
  }

  /** Host pids of the workers (bwrap), for figures. */
  pids(): number[] {
    return this.procs.map((w) => w.sbx.child.pid).filter((p): p is number => p !== undefined)
  }

  /** SIGSTOP the worker running this task (and every task it holds); its time limit stops counting. */
  suspend(ref: SandboxTaskRef): void {
    const p = this.byId.get(ref.id)
    if (p === undefined || p.done) return
    p.suspended = true
    const w = p.proc
    if (w === undefined || w.dead || w.pausedAt !== undefined) return
    w.pausedAt = performance.now()
    if (w.timer !== undefined) clearTimeout(w.timer)
    w.timer = undefined
    w.sbx.signal('SIGSTOP')
  }

  resume(ref: SandboxTaskRef): void {
    const p = this.byId.get(ref.id)
    if (p === undefined || p.done) return
    p.suspended = false
    const w = p.proc
    if (
      w !== undefined &&
      !w.dead &&
      w.pausedAt !== undefined &&
      !w.inFlight.some((q) => q.suspended && !q.done)
    ) {
      w.sbx.signal('SIGCONT')
      w.headSince += performance.now() - w.pausedAt
      w.pausedAt = undefined
      this.armHead(w)
    }
    this.schedulePump()
  }

  /** Ends a task with `outcome` now; if it is on a worker, the worker is killed and its other tasks go back. */
  evict(ref: SandboxTaskRef, outcome: TaskOutcome): boolean {
    const p = this.byId.get(ref.id)
    if (p === undefined || p.done) return false
    const w = p.proc
    if (w === undefined || w.dead) {
      this.settle(p, outcome)
      return true
    }
    this.stopWorker(w, p, outcome)
    return true
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    this.recheck.cancel()
    const outcome: TaskOutcome = { status: 'crashed', error: 'executor closed', durationMs: 0 }
    for (const p of this.queue) this.settle(p, outcome)
    this.queue = []
    await Promise.all(
      [...this.procs].map((w) => {
        for (const p of w.inFlight) this.settle(p, outcome)
        return this.retire(w)
      }),
    )
  }

  // --- dispatch -------------------------------------------------------------

  private schedulePump(): void {
    if (this.pumpScheduled) return
    this.pumpScheduled = true
    queueMicrotask(() => {
      this.pumpScheduled = false
      this.pump()
    })
  }

  private pump(): void {
    if (this.closed) return
    let i = 0
    while (i < this.queue.length) {
      const first = this.queue[i]
      if (first.done) {
        this.queue.splice(i, 1)
        continue
      }
      if (first.suspended) {
        i++
        continue
      }
      const cap = this.costs.inFlightCap(first.costKey)
      let w: Proc | undefined
      try {
        w = this.procFor(first, cap)
      } catch (err) {
        this.queue.splice(i, 1)
        this.settle(first, crashed(`cannot start a sandboxed worker: ${(err as Error).message}`))
        continue
      }
      if (w === undefined) break
      const share = Math.ceil(this.queue.length / this.size)
      this.sendBatch(w, i, Math.max(1, Math.min(cap - w.inFlight.length, share)))
    }
    this.ensureSpares()
    this.rebalance()
  }

  private sendBatch(w: Proc, from: number, n: number): void {
    const sent: Pending[] = []
    const i = from
    while (sent.length < n && i < this.queue.length) {
      const p = this.queue[i]
      if (p.done) {
        this.queue.splice(i, 1)
        continue
      }
      if (p.key !== w.key || p.suspended) break
      this.queue.splice(i, 1)
      p.wire.url = w.bundleUrl!
      sent.push(p)
    }
    if (sent.length === 0) return
    const wasIdle = w.inFlight.length === 0
    for (const p of sent) {
      p.proc = w
      w.inFlight.push(p)
    }
    if (w.idleTimer !== undefined) clearTimeout(w.idleTimer)
    w.idleTimer = undefined
    w.sbx.child.stdin?.write(encodeToWorker(packRun(sent.map((p) => p.wire))))
    if (wasIdle && w.ready) {
      w.headSince = performance.now()
      this.armHead(w)
    }
  }

  /** A worker of this task's job with room, or a spare bound to it, or undefined to wait. */
  private procFor(p: Pending, cap: number): Proc | undefined {
    let best: Proc | undefined
    let idleOther: Proc | undefined
    let soon = false
    let bound = 0
    for (const w of this.procs) {
      if (w.key === undefined || w.dead) continue
      bound++
      // Taking tasks back, or stopped (SIGSTOP) for a suspended one: not now.
      if (w.revoking || w.pausedAt !== undefined) continue
      if (w.key !== p.key) {
        if (w.inFlight.length === 0) idleOther ??= w
      } else if (w.inFlight.length < cap) {
        // Below its cap: it takes more once down to half (hasRoom); no other worker is retired for it.
        soon = true
        if (
          hasRoom(w.inFlight.length, cap) &&
          (best === undefined || w.inFlight.length < best.inFlight.length)
        )
          best = w
      }
    }
    if (best !== undefined && best.inFlight.length === 0) return best
    if (bound < this.size) return this.bind(p)
    if (best !== undefined) return best
    if (idleOther !== undefined && !soon) {
      void this.retire(idleOther)
      return this.bind(p)
    }
    return undefined
  }

  /** A worker for the task's job: a started spare when one fits, else a new one. */
  private bind(p: Pending): Proc {
    const gpus = p.gpus?.join(',') ?? ''
    let w = this.procs.find(
      (x) =>
        p.dedicated === undefined &&
        x.key === undefined &&
        !x.dead &&
        x.memoryMB === p.memoryMB &&
        x.gpus === gpus &&
        x.network === p.network,
    )
    w ??= this.spawn(p.memoryMB, p.gpus, p.network, p.dedicated?.binds)
    w.key = p.key
    w.bundleUrl = this.host.placeBundle(w.sbx, p.wire.bundle, p.bundlePath)
    return w
  }

  private ensureSpares(): void {
    if (this.closed || this.startFailures >= 3) return
    const spares = this.procs.filter((w) => w.key === undefined && !w.dead).length
    for (let i = spares; i < this.spareTarget; i++) {
      try {
        this.spawn(this.host.limits.memoryMB, undefined, false)
      } catch {
        return
      }
    }
  }

  // --- workers --------------------------------------------------------------

  private spawn(
    memoryMB: number,
    gpus: number[] | undefined,
    network: boolean,
    binds?: Array<[string, string]>,
  ): Proc {
    const sbx = this.host.startWorker({ memoryMB, gpus, network, ...(binds ? { binds } : {}) })
    const w: Proc = {
      sbx,
      key: undefined,
      memoryMB,
      gpus: gpus?.join(',') ?? '',
      network,
      bundleUrl: undefined,
      ready: false,
      inFlight: [],
      headSince: 0,
      timer: undefined,
      idleTimer: undefined,
      pausedAt: undefined,
      dead: false,
      tasks: 0,
      reader: new FrameReader(),
      stderr: '',
      startedAt: performance.now(),
      dedicated: binds !== undefined,
      ending: undefined,
      revoking: false,
    }
    const child = sbx.child
    const results = child.stdio[3] as NodeJS.ReadableStream | null
    results?.on('data', (chunk: Buffer) => this.onData(w, chunk))
    child.stderr?.on('data', (chunk: Buffer) => {
      w.stderr = (w.stderr + chunk.toString('utf8')).slice(-STDERR_KEEP)
    })
    child.stdin?.on('error', () => undefined)
    child.on('error', (err) => {
      w.stderr += `\n${err.message}`
    })
    child.on('close', (code, signal) => this.onExit(w, code, signal))
    this.procs.push(w)
    return w
  }

  private onData(w: Proc, chunk: Buffer): void {
    if (w.dead) return
    let frames: Buffer[]
    try {
      frames = w.reader.push(chunk)
      for (const f of frames) {
        const msg = decodeFromSandbox(f)
        if (msg.type === 'ready') {
          if (w.ready) throw new FrameError('a second ready frame')
          w.ready = true
          this.startFailures = 0
          this.lastStartMs = performance.now() - w.startedAt
          if (w.inFlight.length > 0) {
            w.headSince = performance.now()
            this.armHead(w)
          }
        } else if (msg.type === 'revoked') {
          this.onRevoked(w, msg.ids)
        } else {
          this.onResult(w, msg.result)
          if (w.dead) return
        }
      }
    } catch (err) {
      const head = w.inFlight.find((p) => !p.done)
      const why = err instanceof FrameError ? err.message : (err as Error).message
      this.stopWorker(w, head, crashed(`the task's worker broke its result protocol (${why}): stopped`))
      return
    }
    this.afterResults(w)
  }

  private onResult(w: Proc, r: WireResult): void {
    const head = w.inFlight[0]
    if (!w.ready || head === undefined || head.id !== r.id) {
      throw new FrameError(`an answer for task ${r.id}, expected ${head?.id ?? 'none'}`)
    }
    w.inFlight.shift()
    w.tasks++
    w.headSince = performance.now()
    if (r.status !== 'rejected') this.costs.learn(head.costKey, r.ms)
    this.settle(head, toOutcome(r))
  }

  /**
   * The worker dropped these queued tasks on `revoke`: they must be the last of its unanswered
   * ones, in order (anything else breaks the protocol). They go back to the queue.
   */
  private onRevoked(w: Proc, ids: number[]): void {
    if (!w.revoking) throw new FrameError('a revoked frame nobody asked for')
    // All it holds when it read `revoke` between two tasks. A worker that lies here (its task code
    // writes to fd 3) can at most get a task of its own job run again elsewhere.
    const from = w.inFlight.length - ids.length
    if (from < 0 || ids.some((id, k) => w.inFlight[from + k].id !== id)) {
      throw new FrameError(`revoked tasks ${ids.join(',')} that are not the last ones it holds`)
    }
    w.revoking = false
    const back = w.inFlight.splice(from).filter((p) => !p.done)
    this.revokedCount += back.length
    if (from === 0) w.headSince = performance.now()
    // Stopped for a task it no longer holds (suspended after the worker answered): it goes on.
    if (w.pausedAt !== undefined && !w.inFlight.some((q) => q.suspended && !q.done)) {
      w.sbx.signal('SIGCONT')
      w.headSince += performance.now() - w.pausedAt
      w.pausedAt = undefined
      this.armHead(w)
    }
    this.requeue(back)
  }

  /**
   * While a worker bound to a job idles and nothing waits here, takes back the tasks queued on
   * another worker of that job behind a task that has run REVOKE_AFTER_MS (the thread pool's rule,
   * by message: the worker reads it when its event loop is free, so behind a task that blocks the
   * loop the queued ones wait for it to end, and the worker looks at its messages before starting
   * the next); otherwise looks again when the first such task reaches it.
   */
  private rebalance(): void {
    if (this.closed || this.queue.some((p) => !p.done && !p.suspended)) return
    const now = performance.now()
    let wait = Number.POSITIVE_INFINITY
    for (const w of this.procs) {
      if (w.inFlight.length < 2 || w.revoking || !w.ready || w.dead || w.pausedAt !== undefined) continue
      if (w.key === undefined || !this.idles(w.key)) continue
      const ran = now - w.headSince
      if (ran >= REVOKE_AFTER_MS) {
        w.revoking = true
        w.sbx.child.stdin?.write(encodeToWorker({ type: 'revoke' }))
      } else wait = Math.min(wait, REVOKE_AFTER_MS - ran)
    }
    this.recheck.after(wait)
  }

  /** Whether a ready worker bound to this job key idles (rebalance runs after every pump: no allocation). */
  private idles(key: string): boolean {
    for (const w of this.procs)
      if (
        w.key === key &&
        w.ready &&
        !w.dead &&
        !w.revoking &&
        w.pausedAt === undefined &&
        w.inFlight.length === 0
      )
        return true
    return false
  }

  private afterResults(w: Proc): void {
    if (w.inFlight.length === 0) {
      if (w.timer !== undefined) clearTimeout(w.timer)
      w.timer = undefined
      if (w.tasks >= this.maxTasks || w.dedicated) void this.retire(w)
      else if (w.key !== undefined && w.pausedAt === undefined) {
        w.idleTimer = setTimeout(() => {
          if (w.inFlight.length === 0 && !w.dead) {
            void this.retire(w)
            this.ensureSpares()
          }
        }, this.idleMs)
        w.idleTimer.unref()
      }
    } else if (w.pausedAt === undefined) {
      this.armHead(w)
    }
    this.pump()
  }

  private onExit(w: Proc, code: number | null, signal: NodeJS.Signals | null): void {
    if (w.dead) return
    this.forget(w)
    void w.sbx.dispose()
    if (!w.ready) this.startFailures++
    const reason = deathReason(w, code, signal, this.host.limits.cpuSeconds)
    const head = w.ready ? w.inFlight.find((p) => !p.done) : undefined
    const elapsed = w.ready ? performance.now() - w.headSince : 0
    const requeue: Pending[] = []
    for (const p of w.inFlight) {
      if (p.done) continue
      if (p === head) {
        this.settle(p, { status: 'crashed', error: reason, durationMs: elapsed })
      } else if (head === undefined && ++p.bystanderCrashes >= MAX_BYSTANDER_CRASHES) {
        this.settle(p, crashed(`${reason} (the task's worker died ${p.bystanderCrashes} times)`))
      } else {
        requeue.push(p)
      }
    }
    w.inFlight = []
    this.requeue(requeue)
  }

  private requeue(tasks: Pending[]): void {
    for (const p of tasks) p.proc = undefined
    if (tasks.length > 0) this.queue.unshift(...tasks)
    this.schedulePump()
  }

  private forget(w: Proc): void {
    w.dead = true
    if (w.timer !== undefined) clearTimeout(w.timer)
    if (w.idleTimer !== undefined) clearTimeout(w.idleTimer)
    w.timer = undefined
    w.idleTimer = undefined
    const i = this.procs.indexOf(w)
    if (i >= 0) this.procs.splice(i, 1)
  }

  /** Stops a worker on purpose; its tasks must already be settled or moved. */
  private retire(w: Proc): Promise<void> {
    this.forget(w)
    if (w.ending === undefined) return w.sbx.dispose()
    // A dedicated task's outputs are being read from its work dir: remove it after.
    void w.sbx.kill()
    return w.ending.then(() => w.sbx.dispose())
  }

  // --- time limits and cancellation ------------------------------------------

  private armHead(w: Proc): void {
    if (w.timer !== undefined) clearTimeout(w.timer)
    w.timer = undefined
    const head = w.inFlight[0]
    if (head === undefined || !w.ready || w.pausedAt !== undefined) return
    if (head.done) {
      // Cancelled while running (or evicted): it must not keep the worker.
      w.timer = setTimeout(() => this.onTimer(w), 1)
      return
    }
    if (head.timeoutMs === 0) return
    const left = head.timeoutMs - (performance.now() - w.headSince)
    w.timer = setTimeout(() => this.onTimer(w), Math.max(1, Math.ceil(left)))
  }

  private onTimer(w: Proc): void {
    w.timer = undefined
    if (w.dead || w.pausedAt !== undefined) return
    // Answers already written reach us first: look once more after this turn's I/O.
    setImmediate(() => {
      if (w.dead || w.pausedAt !== undefined) return
      const head = w.inFlight[0]
      if (head === undefined) return
      const elapsed = performance.now() - w.headSince
      if (head.done) {
        this.stopWorker(w, undefined, undefined)
      } else if (head.timeoutMs > 0 && elapsed + 0.5 >= head.timeoutMs) {
        this.stopWorker(w, head, {
          status: 'timeout',
          error: `task timed out after ${head.timeoutMs} ms`,
          durationMs: elapsed,
        })
      } else {
        this.armHead(w)
      }
    })
  }

  private cancel(p: Pending): void {
    if (p.done) return
    const w = p.proc
    const outcome: TaskOutcome = { status: 'rejected', error: 'cancelled', durationMs: 0 }
    if (w === undefined || w.dead) {
      this.settle(p, outcome)
      return
    }
    if (w.inFlight[0] === p && w.ready) {
      this.stopWorker(w, p, { ...outcome, durationMs: performance.now() - w.headSince })
    } else {
      // Still waiting on the worker: it answers 'cancelled' for it when its turn comes.
      this.settle(p, outcome)
      w.sbx.child.stdin?.write(encodeToWorker({ type: 'cancel', id: p.id }))
    }
  }

  /** Kills a worker: `p` (if any) ends with `outcome`, its other unsettled tasks go back to the queue. */
  private stopWorker(w: Proc, p: Pending | undefined, outcome: TaskOutcome | undefined): void {
    if (p !== undefined && outcome !== undefined) this.settle(p, outcome)
    const others = w.inFlight.filter((q) => !q.done)
    w.inFlight = []
    void this.retire(w)
    this.requeue(others)
  }

  private settle(p: Pending, outcome: TaskOutcome): void {
    if (p.done) return
    p.done = true
    this.byId.delete(p.id)
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort)
    const w = p.proc
    const end = p.dedicated?.end
    if (outcome.status !== 'ok' || end === undefined || w === undefined || !w.dedicated) {
      p.resolve(outcome)
      return
    }
    // Outputs once nothing of the task runs any more (a process it left behind could still write).
    w.ending = (async () => {
      await w.sbx.kill()
      try {
        p.resolve({ ...outcome, outputs: await end(w.sbx.work) })
      } catch (err) {
        p.resolve({
          status: 'threw',
          error: `outputs: ${(err as Error).message}`,
          durationMs: outcome.durationMs,
        })
      }
    })()
  }
}

function crashed(error: string): TaskOutcome {
  return { status: 'crashed', error, durationMs: 0 }
}

/** Why a worker that exited on its own died, for the `crashed` outcome. */
function deathReason(
  w: Proc,
  code: number | null,
  signal: NodeJS.Signals | null,
  cpuSeconds: number,
): string {
  const err = w.stderr
  if (/heap out of memory|Reached heap limit|Fatal process out of memory/.test(err)) {
    return `worker ran out of memory (limit ${w.memoryMB} MB)`
  }
  // bwrap reports a signal death of its command as 128 + the signal number.
  if (code === 128 + 24 || signal === 'SIGXCPU') return `worker reached its CPU time limit (${cpuSeconds} s)`
  if (code === 128 + 25 || signal === 'SIGXFSZ') return 'worker wrote a file past its size limit'
  if (!w.ready) return `sandboxed worker failed to start (exit ${code ?? signal})${lastLine(err)}`
  const uncaught = /^(\w*Error\b.*|Uncaught .*)$/m.exec(err)
  if (uncaught !== null) return `worker crashed: ${uncaught[1].slice(0, 500)}`
  return `worker exited with code ${code ?? signal}${lastLine(err)}`
}

function lastLine(text: string): string {
  const lines = text.trim().split('\n')
  const last = lines[lines.length - 1]?.trim() ?? ''
  return last === '' ? '' : `: ${last.slice(0, 500)}`
}
