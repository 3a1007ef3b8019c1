/**
 * What the daemon needs to start sandboxes: where bwrap is, whether it runs
 * privileged (the daemon is root), the uids it hands out, the directory that
 * holds each sandbox's scratch and bundle dirs, the Node binary and the
 * worker code bound into function sandboxes, and the default limits.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import {
  chmodSync,
  chownSync,
  closeSync,
  copyFileSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { basename, dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { removeTree, removeTreeSync } from '../remove-tree.ts'
import {
  bwrapArgs,
  gpuDevices,
  SANDBOX_GRIDNODE,
  SANDBOX_WORK,
  type SandboxLimits,
  sandboxEnv,
} from './bwrap-args.ts'
import { signalTree } from './proc-tree.ts'
import { seccompProgram } from './seccomp.ts'

export interface SandboxLimitOptions {
  /** Memory per process when the job sets no memoryMB (MB; default 4096). */
  memoryMB?: number
  /** CPU seconds per process (default 3600). */
  cpuSeconds?: number
  /** Largest file a task may write (MB; default 1024). */
  fileSizeMB?: number
  /** Processes (threads included) per sandbox (default 256). */
  processes?: number
  /** Private /tmp of a command (MB; default 64). */
  tmpMB?: number
}

export interface SandboxHostOptions {
  bwrap: string
  /** Holds one directory per live sandbox; emptied when the host opens. */
  baseDir: string
  /** Drop to a per-sandbox uid with setpriv (default: the daemon is root). */
  privileged?: boolean
  /** First uid handed to sandboxes when privileged (default 2,000,000,000). */
  uidBase?: number
  /** Node binary bound into function sandboxes (default process.execPath). */
  nodePath?: string
  /** The sandboxed worker's entry (default sandbox-worker.ts beside this file); its code dir is bound read-only. */
  workerUrl?: URL
  /** Directory holding the worker entry and everything it imports (default: src/). */
  codeDir?: string
  limits?: SandboxLimitOptions
  /** For tests: whether a device node exists. */
  deviceExists?: (path: string) => boolean
}

export interface SandboxProcess {
  child: ChildProcess
  /** The sandbox's own dir on the host (scratch in work/, bundle in bundle/). */
  dir: string
  /** The scratch dir as the host sees it. */
  work: string
  uid: number | undefined
  /** Signals bwrap and every process under it. */
  signal(signal: NodeJS.Signals): void
  /** Kills it and waits for it to exit; its dirs stay until dispose(). Idempotent. */
  kill(): Promise<void>
  /** Kills the sandbox, waits for it to exit, removes its dirs and frees its uid. Idempotent. */
  dispose(): Promise<void>
}

const MB = 1024 * 1024
/** What a Node process needs beyond its heap (code range, threads, malloc arenas). */
export const NODE_OVERHEAD_MB = 1024
const BUNDLE_DIR = `${SANDBOX_GRIDNODE}/bundle`
const CODE_DIR = `${SANDBOX_GRIDNODE}/code`
const NODE_PATH = `${SANDBOX_GRIDNODE}/node`

export class SandboxHost {
  readonly bwrap: string
  readonly privileged: boolean
  readonly baseDir: string
  private readonly uidBase: number
  private readonly nodePath: string
  private readonly codeDir: string
  private readonly entryInside: string
  readonly limits: Required<SandboxLimitOptions>
  private readonly deviceExists: (path: string) => boolean
  private readonly uidsInUse = new Set<number>()
  private seq = 0
  /** The seccomp filter (seccomp.ts) every sandbox gets, where this machine has one. */
  private readonly seccompPath: string | undefined

  constructor(opts: SandboxHostOptions) {
    this.bwrap = opts.bwrap
    this.baseDir = opts.baseDir
    this.privileged = opts.privileged ?? process.getuid?.() === 0
    this.uidBase = opts.uidBase ?? 2_000_000_000
    this.nodePath = opts.nodePath ?? process.execPath
    const workerUrl = opts.workerUrl ?? new URL('./sandbox-worker.ts', import.meta.url)
    this.codeDir = opts.codeDir ?? fileURLToPath(new URL('../../', import.meta.url))
    const rel = relative(this.codeDir, fileURLToPath(workerUrl))
    if (rel.startsWith('..')) throw new Error(`the sandbox worker ${workerUrl} is not under ${this.codeDir}`)
    this.entryInside = `${CODE_DIR}/${rel.split(sep).join('/')}`
    const l = opts.limits ?? {}
    this.limits = {
      memoryMB: l.memoryMB ?? 4096,
      cpuSeconds: l.cpuSeconds ?? 3600,
      fileSizeMB: l.fileSizeMB ?? 1024,
      processes: l.processes ?? 256,
      tmpMB: l.tmpMB ?? 64,
    }
    this.deviceExists = opts.deviceExists ?? existsSync
    // Base dirs an earlier start had to set aside: another try (removeTree may do it now).
    let siblings: string[] = []
    try {
      siblings = readdirSync(dirname(this.baseDir))
    } catch {
      // No parent yet: nothing set aside either.
    }
    for (const name of siblings)
      if (name.startsWith(`${basename(this.baseDir)}.stale-`))
        try {
          removeTreeSync(join(dirname(this.baseDir), name))
        } catch {
          // Still there: it stays set aside.
        }
    try {
      removeTreeSync(this.baseDir)
    } catch {
      // What an earlier run's tasks left could not be removed: set it aside rather than refuse
      // every sandbox from now on.
      renameSync(this.baseDir, `${this.baseDir}.stale-${Date.now()}`)
    }
    mkdirSync(this.baseDir, { recursive: true, mode: 0o700 })
    const program = seccompProgram()
    if (program !== undefined) {
      this.seccompPath = join(this.baseDir, 'seccomp.bpf')
      writeFileSync(this.seccompPath, program, { mode: 0o400 })
    }
  }

  /** A sandboxed Node worker speaking frames.ts on stdin (tasks) and fd 3 (results). */
  startWorker(o: {
    memoryMB: number
    gpus: number[] | undefined
    network?: boolean
    /** Read-only binds under /work: a dedicated worker's staged inputs. */
    binds?: Array<[string, string]>
  }): SandboxProcess {
    const memoryMB = o.memoryMB > 0 ? Math.ceil(o.memoryMB) : this.limits.memoryMB
    const argv = [
      NODE_PATH,
      '--permission',
      `--allow-fs-read=${CODE_DIR}`,
      `--allow-fs-read=${BUNDLE_DIR}`,
      `--allow-fs-read=${SANDBOX_WORK}`,
      `--allow-fs-write=${SANDBOX_WORK}`,
      `--max-old-space-size=${memoryMB}`,
      '--disable-warning=ExperimentalWarning',
      this.entryInside,
    ]
    return this.start({
      argv,
      env: sandboxEnv({ gpus: o.gpus, tmpDir: `${SANDBOX_WORK}/.tmp` }),
      gpus: o.gpus ?? [],
      memoryMB: memoryMB + NODE_OVERHEAD_MB,
      binds: (dir) => [
        [this.nodePath, NODE_PATH],
        [this.codeDir, CODE_DIR],
        [join(dir, 'bundle'), BUNDLE_DIR],
        ...(o.binds ?? []),
      ],
      stdio: ['pipe', 'ignore', 'pipe', 'pipe'],
      tmpDir: true,
      network: o.network === true,
    })
  }

  /** Puts a bundle where a worker's task imports it from; returns the URL inside the sandbox. */
  placeBundle(proc: SandboxProcess, hash: string, hostPath: string): string {
    const to = join(proc.dir, 'bundle', `${hash}.mjs`)
    if (!existsSync(to)) {
      copyFileSync(hostPath, to)
      chmodSync(to, 0o444)
    }
    return `file://${BUNDLE_DIR}/${hash}.mjs`
  }

  /** A command in its own sandbox, spawned at once; stdout and stderr are pipes, stdin is closed. */
  startCommand(o: {
    argv: string[]
    env: Record<string, string>
    gpus: number[] | undefined
    memoryMB: number
    network?: boolean
    /** Read-only binds: [host file, path inside] (a task's staged inputs, under /work). */
    binds?: Array<[string, string]>
  }): SandboxProcess {
    return this.start({
      network: o.network === true,
      argv: o.argv,
      env: sandboxEnv({ env: o.env, gpus: o.gpus }),
      gpus: o.gpus ?? [],
      memoryMB: o.memoryMB > 0 ? o.memoryMB : this.limits.memoryMB,
      binds: () => o.binds ?? [],
      stdio: ['ignore', 'pipe', 'pipe'],
      tmpDir: false,
    })
  }

  private start(o: {
    argv: string[]
    env: Record<string, string>
    gpus: number[]
    memoryMB: number
    binds: (dir: string) => Array<[string, string]>
    stdio: Array<'pipe' | 'ignore'>
    tmpDir: boolean
    network: boolean
  }): SandboxProcess {
    const uid = this.privileged ? this.takeUid() : undefined
    const dir = join(this.baseDir, `s${++this.seq}`)
    const work = join(dir, 'work')
    let child: ChildProcess
    // bwrap reads the filter from a descriptor of its own: the next one after the sandbox's stdio.
    let seccompFd: number | undefined
    try {
      if (this.seccompPath !== undefined) seccompFd = openSync(this.seccompPath, 'r')
      mkdirSync(join(dir, 'bundle'), { recursive: true, mode: 0o755 })
      mkdirSync(work, { mode: 0o700 })
      if (o.tmpDir) mkdirSync(join(work, '.tmp'), { mode: 0o700 })
      if (uid !== undefined) {
        chmodSync(dir, 0o755)
        chownSync(work, uid, uid)
        if (o.tmpDir) chownSync(join(work, '.tmp'), uid, uid)
      }
      // Staged inputs bound under /work: their directories exist first, readable by the task's uid
      // (bwrap would make them 0700, owned by root).
      for (const [, to] of o.binds(dir)) {
        if (!to.startsWith(`${SANDBOX_WORK}/`)) continue
        let d = work
        for (const part of to
          .slice(SANDBOX_WORK.length + 1)
          .split('/')
          .slice(0, -1)) {
          d = join(d, part)
          if (!existsSync(d)) mkdirSync(d, { mode: 0o755 })
          chmodSync(d, 0o755)
        }
      }
      const limits: SandboxLimits = {
        dataBytes: o.memoryMB * MB,
        cpuSeconds: this.limits.cpuSeconds,
        fileSizeBytes: this.limits.fileSizeMB * MB,
        processes: this.limits.processes,
      }
      const args = bwrapArgs({
        bwrap: this.bwrap,
        uid,
        scratchDir: work,
        roBinds: o.binds(dir),
        devices: gpuDevices(o.gpus, this.deviceExists),
        env: o.env,
        limits,
        tmpBytes: this.limits.tmpMB * MB,
        argv: o.argv,
        network: o.network,
        seccompFd: seccompFd === undefined ? undefined : o.stdio.length,
      })
      const stdio = seccompFd === undefined ? o.stdio : [...o.stdio, seccompFd]
      // cwd: the sandbox's own dir, so a look at /proc/<bwrap>/cwd tells which sandbox a process is.
      child = spawn(this.bwrap, args, { stdio, detached: true, cwd: work })
    } catch (err) {
      if (uid !== undefined) this.uidsInUse.delete(uid)
      rmSync(dir, { recursive: true, force: true })
      throw err
    } finally {
      if (seccompFd !== undefined) closeSync(seccompFd)
    }
    const exited = new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) resolve()
      child.once('close', () => resolve())
      child.once('error', () => resolve())
    })
    let disposing: Promise<void> | undefined
    const signal = (sig: NodeJS.Signals) => {
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null)
        signalTree(child.pid, sig)
    }
    const kill = async () => {
      // bwrap dies, its PID namespace's init gets SIGKILL (--die-with-parent), and with it every process inside.
      if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
        try {
          process.kill(child.pid, 'SIGKILL')
        } catch {
          // Already gone.
        }
      }
      await exited
    }
    return {
      child,
      dir,
      work,
      uid,
      signal,
      kill,
      dispose: () => {
        disposing ??= (async () => {
          await kill()
          await removeTree(dir).catch(() => undefined)
          if (uid !== undefined) this.uidsInUse.delete(uid)
        })()
        return disposing
      },
    }
  }

  private takeUid(): number {
    for (let i = 0; ; i++) {
      const uid = this.uidBase + i
      if (!this.uidsInUse.has(uid)) {
        this.uidsInUse.add(uid)
        return uid
      }
    }
  }

  /** Removes every sandbox dir (at close, after every sandbox is disposed). */
  async close(): Promise<void> {
    await removeTree(this.baseDir).catch(() => undefined)
  }
}
