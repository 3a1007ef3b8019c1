/**
 * The local executor: runs one attempt of a task on this machine and says how
 * it ended. Function tasks go to the worker pool (after their bundle is in the
 * blob store), commands to the command runner, noop tasks end at once.
 *
 * Tasks of other nodes (job.owner !== self), and the node's own when
 * `sandbox.own` is set, run sandboxed: functions in the sandboxed process
 * pool, commands each in a fresh bubblewrap. Without a working sandbox a
 * foreign task is rejected, unless the mode is `none` (the operator's
 * explicit opt-out), when it runs like an own task.
 *
 * Working directories: a command, and a function task whose job has input
 * files or outputs, runs in a fresh directory of its own holding its staged
 * inputs; outputs are collected from it when the task ends, and it is
 * removed. Commands and unsandboxed function tasks use
 * `<dataDir>/scratch/<task>` (functions on a plain process slot, which enters
 * it for the task: a worker thread cannot); sandboxed ones a fresh sandbox
 * whose /work holds the inputs as read-only binds. Function tasks without
 * files stay on the worker threads (or the sandboxed pool), whose cwd is the
 * daemon's (see README, "Where tasks run").
 */

import { mkdir, rmdir } from 'node:fs/promises'
import { join } from 'node:path'
import type { JobSpec, TaskDescriptor, TaskKey, TaskOutcome } from '../domain/types.ts'
import { type BlobStore, isBlobHash } from './blob-store.ts'
import { type CommandHandle, runCommand } from './command.ts'
import {
  collectOutputs,
  type InputChange,
  inputBinds,
  inputChangedOutcome,
  type StagedFiles,
  stageInputs,
  type TaskFiles,
} from './files.ts'
import { ProcessHost } from './process-host.ts'
import { removeTree } from './remove-tree.ts'
import { SANDBOX_WORK } from './sandbox/bwrap-args.ts'
import type { SandboxHost } from './sandbox/host.ts'
import type { SandboxStatus } from './sandbox/index.ts'
import { SandboxPool, type SandboxPoolOptions, type SandboxTaskRef } from './sandbox/sandbox-pool.ts'
import { scratchPath, shadowRoot } from './scratch.ts'
import { WorkerPool } from './worker-pool.ts'
import { bundleLabel } from './worker-protocol.ts'

export interface RunOptions {
  /** GPU indexes assigned to this task (empty for CPU tasks). */
  gpus: number[]
  /** Aborting it cancels the task: queued or running, it ends `rejected` 'cancelled'. */
  signal?: AbortSignal
  /** The job is another node's (default: its owner is not `self`). */
  foreign?: boolean
  /**
   * Run it sandboxed (the driver: foreign, or own with policy `sandboxOwn`). Default: foreign,
   * or own with the executor's `sandbox.own`. Ignored where no sandbox works.
   */
  sandboxed?: boolean
  /** A sandboxed task keeps the host's network (trust policy `network`; default none). */
  network?: boolean
  /** Input files to stage into the task's working dir (already in the blob store) and outputs to collect. */
  files?: TaskFiles
}

export interface Executor {
  /** Never rejects: every failure is an outcome. */
  run(job: JobSpec, task: TaskDescriptor, opts: RunOptions): Promise<TaskOutcome>
  /** Stops the workers and commands; tasks still running end `crashed` 'executor closed'. */
  close(): Promise<void>
  /** Whether and how tasks from other nodes run here (absent: everything runs unsandboxed). */
  sandboxStatus?(): SandboxStatus
  /**
   * Owner policy: stops a running task (SIGSTOP to its whole sandbox or process group; a
   * sandboxed function worker holds only one job's tasks, and they all stop). Its time limit
   * stops counting until `resume`. False when the task is not running here or cannot be
   * suspended (an own task on a worker thread).
   */
  suspend?(task: TaskKey): boolean
  resume?(task: TaskKey): boolean
  /** suspend / resume every running task of another node; returns how many. */
  signalForeign?(signal: 'SIGSTOP' | 'SIGCONT'): number
  /**
   * Ends a task at once (killing what runs it) and resolves its run() with
   * `{ status: 'returned', error: reason }`: the task goes back to its owner, an
   * infrastructure outcome. False when it is not here (any more).
   */
  evict?(task: TaskKey, reason: string): boolean
}

export interface ExecutorSandboxOptions {
  /** The probe's verdict (sandbox/probe.ts). */
  status: SandboxStatus
  /** Set when sandboxes work. */
  host?: SandboxHost
  /** Run this node's own tasks sandboxed too (policy `sandboxOwn`). */
  own?: boolean
  /** Sandboxed function workers: spares, recycling. */
  pool?: Omit<SandboxPoolOptions, 'size' | 'host'>
}

export interface LocalExecutorOptions {
  dataDir: string
  /** Worker threads for function tasks. */
  slots: number
  blobs: BlobStore
  /** Gets a blob this node lacks from the mesh; its bytes are verified here. */
  fetchBlob: (hash: string) => Promise<Uint8Array>
  /** Heap limit (MB) for function tasks whose job sets no memoryMB (default 4096). */
  defaultMemoryMB?: number
  /** Worker entry file, for a bundled daemon (default: worker.ts beside worker-pool.ts). */
  workerUrl?: URL
  /** This node's peer id: jobs owned by anyone else are foreign. Absent: every job is own. */
  self?: string
  /** Absent: no sandbox, and foreign tasks run like own ones (tests, embedded use). */
  sandbox?: ExecutorSandboxOptions
}

interface Running {
  foreign: boolean
  abort: AbortController
  /** Set by evict(): the reason the run ends `returned`. */
  evicted?: string
  ref?: SandboxTaskRef
  /** The pool `ref` is in (the sandboxed one or the plain process one). */
  pool?: SandboxPool
  command?: CommandHandle
  suspended: boolean
}

const NO_FILES: TaskFiles = { inputs: [] }

const keyOf = (t: TaskKey) => `${t.job}#${t.index}#${t.attempt}`

export function createLocalExecutor(opts: LocalExecutorOptions): Executor {
  return new LocalExecutor(opts)
}

class LocalExecutor implements Executor {
  private readonly opts: LocalExecutorOptions
  private readonly pool: WorkerPool
  /** Bundles known to be in the blob store. */
  private readonly present = new Set<string>()
  /** Fetches under way, shared by every task waiting for the same bundle. */
  private readonly fetching = new Map<string, Promise<void>>()
  /** Running commands: how to stop each, and when it has ended (scratch dir removed). */
  private readonly commands = new Map<AbortController, Promise<TaskOutcome>>()
  private readonly sandboxPool: SandboxPool | undefined
  /** Plain process slots for own function tasks with a working directory (made at first use). */
  private processPool: { pool: SandboxPool; host: ProcessHost } | undefined
  private readonly running = new Map<string, Running>()
  private closed = false
  /**
   * Benchmarks only (`GRIDNODE_BENCH_FUNCTION_SLOTS=process`, npm run bench -- workdir): every
   * function task takes the working-directory path, to measure what that rule would cost all.
   */
  private readonly allInDirs = process.env.GRIDNODE_BENCH_FUNCTION_SLOTS === 'process'

  constructor(opts: LocalExecutorOptions) {
    this.opts = opts
    this.pool = new WorkerPool({
      size: opts.slots,
      defaultMemoryMB: opts.defaultMemoryMB,
      workerUrl: opts.workerUrl,
    })
    const host = opts.sandbox?.host
    if (host !== undefined)
      this.sandboxPool = new SandboxPool({ ...opts.sandbox?.pool, size: opts.slots, host })
  }

  sandboxStatus(): SandboxStatus {
    return (
      this.opts.sandbox?.status ?? {
        mode: 'none',
        available: false,
        acceptsForeign: true,
        reason: 'no sandbox configured',
      }
    )
  }

  /** The sandboxed function pool, for figures and tests. */
  get sandboxed(): SandboxPool | undefined {
    return this.sandboxPool
  }

  async run(job: JobSpec, task: TaskDescriptor, opts: RunOptions): Promise<TaskOutcome> {
    const key = keyOf(task)
    const foreign = opts.foreign ?? (this.opts.self !== undefined && job.owner !== this.opts.self)
    const abort = new AbortController()
    const r: Running = { foreign, abort, suspended: false }
    const forward = () => abort.abort()
    opts.signal?.addEventListener('abort', forward, { once: true })
    if (opts.signal?.aborted) abort.abort()
    this.running.set(key, r)
    try {
      const outcome = await this.runOnce(job, task, { ...opts, signal: abort.signal }, r)
      if (r.evicted !== undefined && outcome.status !== 'ok') {
        return { status: 'returned', error: r.evicted, durationMs: outcome.durationMs }
      }
      return outcome
    } finally {
      opts.signal?.removeEventListener('abort', forward)
      if (this.running.get(key) === r) this.running.delete(key)
    }
  }

  suspend(task: TaskKey): boolean {
    return this.setSuspended(this.running.get(keyOf(task)), true)
  }

  resume(task: TaskKey): boolean {
    return this.setSuspended(this.running.get(keyOf(task)), false)
  }

  signalForeign(signal: 'SIGSTOP' | 'SIGCONT'): number {
    let n = 0
    for (const r of this.running.values()) {
      if (r.foreign && this.setSuspended(r, signal === 'SIGSTOP')) n++
    }
    return n
  }

  evict(task: TaskKey, reason: string): boolean {
    const r = this.running.get(keyOf(task))
    if (r === undefined || r.abort.signal.aborted) return false
    r.evicted = reason
    // A stopped process dies of SIGKILL all the same; resume first so nothing stays stopped.
    this.setSuspended(r, false)
    r.abort.abort()
    return true
  }

  private setSuspended(r: Running | undefined, stop: boolean): boolean {
    if (r === undefined || r.suspended === stop) return r !== undefined
    if (r.ref !== undefined && r.pool !== undefined) {
      if (stop) r.pool.suspend(r.ref)
      else r.pool.resume(r.ref)
    } else if (r.command !== undefined) {
      if (stop) r.command.suspend()
      else r.command.resume()
    } else {
      return false
    }
    r.suspended = stop
    return true
  }

  private async runOnce(
    job: JobSpec,
    task: TaskDescriptor,
    opts: RunOptions,
    r: Running,
  ): Promise<TaskOutcome> {
    const start = performance.now()
    try {
      if (this.closed) return { status: 'crashed', error: 'executor closed', durationMs: 0 }
      if (opts.signal?.aborted) return { status: 'rejected', error: 'cancelled', durationMs: 0 }
      const work = job.work
      if (work.kind === 'noop') {
        return { status: 'ok', value: new Uint8Array(0), durationMs: performance.now() - start }
      }
      const sandboxed = this.wantsSandbox(r.foreign, opts.sandboxed) || this.wantsProcessForMemory(job)
      if (sandboxed === 'refuse') {
        const status = this.sandboxStatus()
        return {
          status: 'rejected',
          error: `this node runs no tasks from other nodes without a sandbox (GN_NO_SANDBOX): ${status.reason}`,
          durationMs: 0,
        }
      }
      switch (work.kind) {
        case 'function':
          return await this.runFunction(job, work, task, opts, r, sandboxed ? r : undefined)
        case 'command':
          return await this.runCommandTask(job, work, task, opts, sandboxed, r)
        default:
          return {
            status: 'rejected',
            error: `unknown work kind ${JSON.stringify((work as { kind: unknown }).kind)}`,
            durationMs: 0,
          }
      }
    } catch (err) {
      // A bug here, not the task's fault: let the owner retry it elsewhere.
      return {
        status: 'crashed',
        error: `executor error: ${(err as Error).message}`,
        durationMs: performance.now() - start,
      }
    }
  }

  async close(): Promise<void> {
    if (this.closed) return
    this.closed = true
    for (const c of this.commands.keys()) c.abort()
    await Promise.all([
      this.pool.close(),
      this.sandboxPool?.close(),
      this.processPool?.pool.close(),
      ...this.commands.values(),
    ])
    await this.opts.sandbox?.host?.close()
    await this.processPool?.host.close()
  }

  /** true: sandboxed; false: as own code; 'refuse': foreign with no sandbox and no opt-out. */
  private wantsSandbox(foreign: boolean, asked: boolean | undefined): boolean | 'refuse' {
    const sb = this.opts.sandbox
    if (sb === undefined) return false
    const available = sb.host !== undefined
    if (foreign) {
      if (available) return true
      return sb.status.mode === 'none' ? false : 'refuse'
    }
    // Own code is trusted: sandboxed only on request, and only where a sandbox works.
    return (asked ?? sb.own === true) && available
  }

  /**
   * An own function task whose job sets memoryMB runs in the sandboxed process pool where a
   * sandbox works: there the limit covers all of its memory (rlimit), where a worker thread's
   * heap limit leaves Buffers and ArrayBuffers out.
   */
  private wantsProcessForMemory(job: JobSpec): boolean {
    return job.work.kind === 'function' && job.resources.memoryMB > 0 && this.opts.sandbox?.host !== undefined
  }

  private async runFunction(
    job: JobSpec,
    work: Extract<JobSpec['work'], { kind: 'function' }>,
    task: TaskDescriptor,
    opts: RunOptions,
    r: Running,
    sandboxed?: Running,
  ): Promise<TaskOutcome> {
    const start = performance.now()
    // A bundle known present was checked when it came; only a new one is checked here.
    if (!this.present.has(work.bundle) && !isBlobHash(work.bundle)) {
      return { status: 'rejected', error: `bad bundle hash ${JSON.stringify(work.bundle)}`, durationMs: 0 }
    }
    if (!this.present.has(work.bundle)) {
      try {
        await this.ensureBundle(work.bundle)
      } catch (err) {
        return {
          status: 'rejected',
          error: `bundle ${bundleLabel(work.bundle)} unavailable: ${(err as Error).message}`,
          durationMs: performance.now() - start,
        }
      }
      if (opts.signal?.aborted) return { status: 'rejected', error: 'cancelled', durationMs: 0 }
    }
    const files = opts.files ?? (this.allInDirs ? NO_FILES : undefined)
    if (files !== undefined) return this.runFunctionInDir(job, work, task, opts, files, sandboxed, r)
    if (sandboxed !== undefined && this.sandboxPool !== undefined) {
      sandboxed.ref = { id: 0 }
      sandboxed.pool = this.sandboxPool
      return this.sandboxPool.run(this.processTask(job, work, task, opts), opts.signal, sandboxed.ref)
    }
    return this.pool.run(
      {
        bundle: work.bundle,
        url: this.opts.blobs.urlOf(work.bundle),
        exportName: work.exportName,
        call: work.call,
        input: task.input,
        depValues: task.depValues,
        timeoutMs: job.timeoutMs,
        memoryMB: job.resources.memoryMB,
        gpus: opts.gpus,
      },
      opts.signal,
    )
  }

  /** A function task as a process slot (sandboxed or plain) takes it: the bundle by path, not URL. */
  private processTask(
    job: JobSpec,
    work: Extract<JobSpec['work'], { kind: 'function' }>,
    task: TaskDescriptor,
    opts: RunOptions,
  ) {
    return {
      job: `${job.owner}/${job.id}`,
      bundle: work.bundle,
      bundlePath: this.opts.blobs.pathOf(work.bundle),
      url: '',
      exportName: work.exportName,
      call: work.call,
      input: task.input,
      depValues: task.depValues,
      timeoutMs: job.timeoutMs,
      memoryMB: job.resources.memoryMB,
      gpus: job.resources.gpu > 0 ? opts.gpus : undefined,
      network: opts.network === true,
    }
  }

  /**
   * A function task with a working directory of its own: sandboxed, a fresh sandbox with its
   * inputs bound under /work; otherwise a plain process slot entering `<dataDir>/scratch/<task>`,
   * made and staged here, its outputs collected once the task ended, then removed.
   */
  private async runFunctionInDir(
    job: JobSpec,
    work: Extract<JobSpec['work'], { kind: 'function' }>,
    task: TaskDescriptor,
    opts: RunOptions,
    files: TaskFiles,
    sandboxed: Running | undefined,
    r: Running,
  ): Promise<TaskOutcome> {
    const start = performance.now()
    const blobs = this.opts.blobs
    const outputs = files.outputs && files.outputs.globs.length > 0 ? files.outputs : undefined
    const base = this.processTask(job, work, task, opts)
    r.ref = { id: 0 }
    if (sandboxed !== undefined && this.sandboxPool !== undefined) {
      r.pool = this.sandboxPool
      return this.sandboxPool.run(
        {
          ...base,
          dedicated: {
            binds: inputBinds(files.inputs, SANDBOX_WORK),
            end: outputs ? (dir) => collectOutputs(dir, outputs, files.inputs, blobs) : undefined,
          },
        },
        opts.signal,
        r.ref,
      )
    }
    const pool = this.processSlots()
    r.pool = pool
    const dir = scratchPath(this.opts.dataDir, task)
    let staged: StagedFiles | undefined
    try {
      try {
        await freshDir(dir)
        staged = await stageInputs(dir, files.inputs, shadowRoot(this.opts.dataDir))
      } catch (err) {
        return {
          status: 'crashed',
          error: `cannot make the task's working dir: ${(err as Error).message}`,
          durationMs: performance.now() - start,
        }
      }
      const outcome = await pool.run({ ...base, cwd: dir }, opts.signal, r.ref)
      // The worker has left the directory: did the task write through its read-only inputs?
      const changed = await staged.check()
      if (changed !== undefined) return inputChangedOutcome(changed, outcome.durationMs)
      if (outcome.status !== 'ok' || outputs === undefined) return outcome
      try {
        return { ...outcome, outputs: await collectOutputs(dir, outputs, files.inputs, blobs) }
      } catch (err) {
        return {
          status: 'threw',
          error: `outputs: ${(err as Error).message}`,
          durationMs: outcome.durationMs,
        }
      }
    } finally {
      // Not checked on the way (a throw): the task's links still go under the shadow's lock, not with the dir.
      await staged?.check().catch(() => undefined)
      await removeDir(dir)
    }
  }

  private processSlots(): SandboxPool {
    if (this.processPool === undefined) {
      // Bundled (dist/), the process worker sits beside worker.js.
      const bundled = this.opts.workerUrl?.href.endsWith('.js') === true
      const host = new ProcessHost({
        baseDir: join(this.opts.dataDir, 'procs'),
        memoryMB: this.opts.defaultMemoryMB,
        workerUrl: bundled ? new URL('./sandbox-worker.js', this.opts.workerUrl) : undefined,
      })
      // No spares: most nodes never run a function task with files; a worker starts with its first task.
      this.processPool = { host, pool: new SandboxPool({ size: this.opts.slots, host, spares: 0 }) }
    }
    return this.processPool.pool
  }

  private ensureBundle(hash: string): Promise<void> {
    let p = this.fetching.get(hash)
    if (p === undefined) {
      p = this.obtain(hash).finally(() => this.fetching.delete(hash))
      this.fetching.set(hash, p)
    }
    return p
  }

  private async obtain(hash: string): Promise<void> {
    const blobs = this.opts.blobs
    if (!(await blobs.has(hash))) {
      const bytes = await this.opts.fetchBlob(hash)
      await blobs.putVerified(hash, bytes)
    }
    this.present.add(hash)
  }

  private async runCommandTask(
    job: JobSpec,
    work: Extract<JobSpec['work'], { kind: 'command' }>,
    task: TaskDescriptor,
    opts: RunOptions,
    sandboxed: boolean,
    r: Running,
  ): Promise<TaskOutcome> {
    const controller = new AbortController()
    const host = sandboxed ? this.opts.sandbox?.host : undefined
    const gpuTask = job.resources.gpu > 0 || opts.gpus.length > 0
    const forward = () => controller.abort()
    opts.signal?.addEventListener('abort', forward, { once: true })
    const files = opts.files
    const blobs = this.opts.blobs
    let staged: StagedFiles | undefined
    let changed: InputChange | undefined
    try {
      const running = runCommand({
        stage:
          files && files.inputs.length > 0
            ? async (dir) => {
                staged = await stageInputs(dir, files.inputs, shadowRoot(this.opts.dataDir))
              }
            : undefined,
        unstage: async () => {
          changed = await staged?.check()
        },
        collect:
          files?.outputs && files.outputs.globs.length > 0
            ? (dir) => collectOutputs(dir, files.outputs!, files.inputs, blobs)
            : undefined,
        argv: work.argv,
        env: work.env,
        stdoutMaxBytes: work.stdoutMaxBytes,
        input: task.input,
        timeoutMs: job.timeoutMs,
        gpus: opts.gpus,
        gpuTask: job.resources.gpu > 0,
        scratchDir: scratchPath(this.opts.dataDir, task),
        memoryMB: job.resources.memoryMB,
        signal: controller.signal,
        sandbox:
          host === undefined
            ? undefined
            : (argv, env) =>
                host.startCommand({
                  argv,
                  env,
                  gpus: gpuTask ? opts.gpus : undefined,
                  memoryMB: job.resources.memoryMB,
                  network: opts.network === true,
                  binds: files ? inputBinds(files.inputs, SANDBOX_WORK) : undefined,
                }),
        onStart: (handle) => {
          r.command = handle
        },
      })
      this.commands.set(controller, running)
      const outcome = await running
      // Checked once the command ended (unstage): did it write through its read-only inputs?
      if (changed !== undefined) return inputChangedOutcome(changed, outcome.durationMs)
      if (this.closed && outcome.status === 'rejected' && !opts.signal?.aborted) {
        return { status: 'crashed', error: 'executor closed', durationMs: outcome.durationMs }
      }
      return outcome
    } finally {
      staged?.release()
      this.commands.delete(controller)
      opts.signal?.removeEventListener('abort', forward)
    }
  }
}

/** An empty directory at `dir`: one mkdir, unless its parent is missing or an earlier run left it there. */
async function freshDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { mode: 0o700 })
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    if (code === 'EEXIST') await removeTree(dir)
    else if (code !== 'ENOENT') throw err
    await mkdir(dir, { recursive: true, mode: 0o700 })
  }
}

/** Removes a task's directory: one rmdir when the task left it empty, else the whole tree. */
async function removeDir(dir: string): Promise<void> {
  try {
    await rmdir(dir)
  } catch {
    await removeTree(dir).catch(() => undefined)
  }
}
