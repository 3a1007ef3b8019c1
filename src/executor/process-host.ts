/**
 * Process slots without the jail: function tasks of this node's own jobs
 * that need a working directory of their own (input files, outputs) run in
 * plain Node processes, the same worker entry the sandbox runs
 * (sandbox/sandbox-worker.ts), driven by the same pool (SandboxPool).
 *
 * A worker thread cannot have a cwd of its own (`process.chdir` is refused in
 * workers, and relative paths resolve against the process's), a process can:
 * each task arrives with the directory the executor made and staged for it
 * (WireTask.cwd), the worker enters it for the task's duration and goes back
 * to its own empty directory under `baseDir` afterwards.
 *
 * Trusted code, like the thread pool: the daemon's environment (plus the
 * task's CUDA variables), no rlimits, V8's heap limit. The task's stdout is
 * the daemon's, as on a thread; its stderr is kept by the pool for the
 * `crashed` message of a worker that dies.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdirSync, rmSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import type { SandboxProcess } from './sandbox/host.ts'
import type { WorkerHost } from './sandbox/sandbox-pool.ts'

export interface ProcessHostOptions {
  /** Holds one empty directory per live worker; emptied when the host opens. */
  baseDir: string
  /** Heap limit (MB) of a worker whose job sets no memoryMB (default 4096). */
  memoryMB?: number
  /** Node binary (default process.execPath). */
  nodePath?: string
  /** Worker entry (default sandbox/sandbox-worker.ts beside this file; a bundled daemon passes its own). */
  workerUrl?: URL
}

export class ProcessHost implements WorkerHost {
  readonly limits: { memoryMB: number; cpuSeconds: number }
  private readonly baseDir: string
  private readonly nodePath: string
  private readonly entry: string
  private seq = 0

  constructor(opts: ProcessHostOptions) {
    this.baseDir = opts.baseDir
    this.nodePath = opts.nodePath ?? process.execPath
    this.entry = fileURLToPath(opts.workerUrl ?? new URL('./sandbox/sandbox-worker.ts', import.meta.url))
    // cpuSeconds 0: no CPU rlimit here (the pool only quotes it in a death message).
    this.limits = { memoryMB: opts.memoryMB ?? 4096, cpuSeconds: 0 }
    rmSync(this.baseDir, { recursive: true, force: true })
    mkdirSync(this.baseDir, { recursive: true, mode: 0o700 })
  }

  startWorker(o: { memoryMB: number; gpus: number[] | undefined }): SandboxProcess {
    const memoryMB = o.memoryMB > 0 ? Math.ceil(o.memoryMB) : this.limits.memoryMB
    const dir = join(this.baseDir, `p${++this.seq}`)
    mkdirSync(dir, { recursive: true, mode: 0o700 })
    const env: NodeJS.ProcessEnv = { ...process.env }
    if (o.gpus !== undefined) {
      env.CUDA_VISIBLE_DEVICES = o.gpus.join(',')
      env.CUDA_DEVICE_ORDER = 'PCI_BUS_ID'
    }
    let child: ChildProcess
    try {
      child = spawn(
        this.nodePath,
        [`--max-old-space-size=${memoryMB}`, '--disable-warning=ExperimentalWarning', this.entry],
        // detached: its own process group, so signals reach whatever the task started too.
        { stdio: ['pipe', 'inherit', 'pipe', 'pipe'], detached: true, cwd: dir, env },
      )
    } catch (err) {
      rmSync(dir, { recursive: true, force: true })
      throw err
    }
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve()
      child.once('close', () => resolve())
      child.once('error', () => resolve())
    })
    const alive = () => child.pid !== undefined && child.exitCode === null && child.signalCode === null
    const group = (sig: NodeJS.Signals) => {
      try {
        process.kill(-child.pid!, sig)
      } catch {
        // Already gone.
      }
    }
    const kill = async () => {
      if (alive()) group('SIGKILL')
      await exited
    }
    let disposing: Promise<void> | undefined
    return {
      child,
      dir,
      work: dir,
      uid: undefined,
      signal: (sig) => {
        if (alive()) group(sig)
      },
      kill,
      dispose: () => {
        disposing ??= (async () => {
          await kill()
          await rm(dir, { recursive: true, force: true }).catch(() => undefined)
        })()
        return disposing
      },
    }
  }

  /** The bundle is imported from the blob store where it lies: nothing to copy. */
  placeBundle(_proc: SandboxProcess, _hash: string, hostPath: string): string {
    return pathToFileURL(hostPath).href
  }

  async close(): Promise<void> {
    await rm(this.baseDir, { recursive: true, force: true }).catch(() => undefined)
  }
}
