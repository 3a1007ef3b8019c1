/**
 * The local executor: runs one attempt of a task on this machine and says how
 * it ended. Function tasks go to the worker pool (after their bundle is in the
 * blob store), commands to the command runner, noop tasks end at once.
 */
import { join } from 'node:path'
import type { JobSpec, TaskDescriptor, TaskOutcome } from '../scheduler/types.ts'
import { type BlobStore, isBlobHash } from './blob-store.ts'
import { runCommand } from './command.ts'
import { WorkerPool } from './worker-pool.ts'
import { bundleLabel } from './worker-protocol.ts'

export interface RunOptions {
  /** GPU indexes assigned to this task (empty for CPU tasks). */
  gpus: number[]
  /** Aborting it cancels the task: queued or running, it ends `rejected` 'cancelled'. */
  signal?: AbortSignal
}

export interface Executor {
  /** Never rejects: every failure is an outcome. */
  run(job: JobSpec, task: TaskDescriptor, opts: RunOptions): Promise<TaskOutcome>
  /** Stops the workers and commands; tasks still running end `crashed` 'executor closed'. */
  close(): Promise<void>
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
}

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
  private closed = false

  constructor(opts: LocalExecutorOptions) {
    this.opts = opts
    this.pool = new WorkerPool({
      size: opts.slots,
      defaultMemoryMB: opts.defaultMemoryMB,
      workerUrl: opts.workerUrl,
    })
  }

  async run(job: JobSpec, task: TaskDescriptor, opts: RunOptions): Promise<TaskOutcome> {
    const start = performance.now()
    try {
      if (this.closed) return { status: 'crashed', error: 'executor closed', durationMs: 0 }
      if (opts.signal?.aborted) return { status: 'rejected', error: 'cancelled', durationMs: 0 }
      const work = job.work
      switch (work.kind) {
        case 'noop':
          return { status: 'ok', value: new Uint8Array(0), durationMs: performance.now() - start }
        case 'function':
          return await this.runFunction(job, work, task, opts)
        case 'command':
          return await this.runCommandTask(job, work, task, opts)
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
    await Promise.all([this.pool.close(), ...this.commands.values()])
  }

  private async runFunction(
    job: JobSpec,
    work: Extract<JobSpec['work'], { kind: 'function' }>,
    task: TaskDescriptor,
    opts: RunOptions,
  ): Promise<TaskOutcome> {
    const start = performance.now()
    if (!isBlobHash(work.bundle)) {
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
  ): Promise<TaskOutcome> {
    const controller = new AbortController()
    const forward = () => controller.abort()
    opts.signal?.addEventListener('abort', forward, { once: true })
    try {
      const running = runCommand({
        argv: work.argv,
        env: work.env,
        stdoutMaxBytes: work.stdoutMaxBytes,
        input: task.input,
        timeoutMs: job.timeoutMs,
        gpus: opts.gpus,
        gpuTask: job.resources.gpu > 0,
        scratchDir: join(this.opts.dataDir, 'scratch', scratchName(task)),
        signal: controller.signal,
      })
      this.commands.set(controller, running)
      const outcome = await running
      if (this.closed && outcome.status === 'rejected' && !opts.signal?.aborted) {
        return { status: 'crashed', error: 'executor closed', durationMs: outcome.durationMs }
      }
      return outcome
    } finally {
      this.commands.delete(controller)
      opts.signal?.removeEventListener('abort', forward)
    }
  }
}

function scratchName(task: TaskDescriptor): string {
  return `${task.job.replace(/[^A-Za-z0-9._-]/g, '_')}-${task.index}-${task.attempt}`
}
