/**
 * Command tasks: argv[0] spawned directly (no shell) in a fresh scratch
 * directory, `{}` in any argument replaced by the task's input (a string as
 * is, anything else as JSON), output captured up to a cap.
 *
 * Outcomes:
 * - exit 0: `ok`, value = encodeValue({ exitCode: 0, stdout, stderr,
 *   stdoutTruncated, stderrTruncated }). stdout keeps its first
 *   stdoutMaxBytes bytes, stderr its last (errors come last); both are
 *   decoded as UTF-8.
 * - other exit code or a signal: `threw`, error = "command exited with code
 *   N" (or "was killed by signal S") followed by the last lines of stderr (of
 *   stdout when stderr is empty). The output itself is not kept.
 * - executable missing or not executable: `rejected`.
 * - time limit: the process group gets SIGTERM, then SIGKILL 2 s later: `timeout`.
 * - AbortSignal: the same kill, then `rejected` 'cancelled'.
 * The command runs in its own process group, which is killed once the command
 * exits: nothing it started outlives the task.
 *
 * With `sandbox`, the command runs inside bubblewrap instead (sandbox/host.ts):
 * the sandbox's own scratch dir, a scrubbed environment, rlimits, its own PID
 * namespace, killed whole when the command ends. `onStart` hands the caller a
 * handle to suspend and resume it (the time limit stops counting meanwhile).
 */
import { type ChildProcessByStdio, spawn } from 'node:child_process'
import { mkdir } from 'node:fs/promises'
import type { Readable } from 'node:stream'
import { MAX_COMMAND_OUTPUT_BYTES, type OutputFile, type TaskOutcome } from '../domain/types.ts'
import { decodeValue, encodeValue } from '../domain/values.ts'
import { removeTree } from './remove-tree.ts'
import type { SandboxProcess } from './sandbox/host.ts'

export interface CommandTask {
  argv: string[]
  env: Record<string, string>
  /** Cap for stdout and for stderr, each; <= 0 means 1 MiB; never above MAX_COMMAND_OUTPUT_BYTES. */
  stdoutMaxBytes: number
  input: Uint8Array
  /** 0: no limit. */
  timeoutMs: number
  /** GPU indexes assigned to the task. */
  gpus: number[]
  /** Set CUDA_VISIBLE_DEVICES even when `gpus` is empty (the job asked for GPUs). */
  gpuTask: boolean
  /** Created fresh for the run and removed after it (unused with `sandbox`: the sandbox has its own). */
  scratchDir: string
  signal?: AbortSignal
  /** Starts the command in a sandbox (argv and the job's env as given) instead of spawning it here. */
  sandbox?: (argv: string[], env: Record<string, string>) => SandboxProcess
  /**
   * Memory per task in MB (the job's memoryMB): outside the sandbox the command runs under
   * `prlimit --data` with it (inside, the sandbox sets its own rlimits). 0 or absent: no limit.
   */
  memoryMB?: number
  /** Called once the command is started, with a handle to suspend and resume it. */
  onStart?: (handle: CommandHandle) => void
  /** Puts the task's input files into its scratch dir before it starts (unsandboxed: the sandbox binds them). */
  stage?: (dir: string) => Promise<void>
  /** After the command ended, however it ended, before its scratch dir goes (unsandboxed): the staged inputs' check. */
  unstage?: (dir: string) => Promise<void>
  /**
   * After an exit 0, before the working dir goes: brings its outputs back. A throw fails the task
   * (`threw`, with the error's message).
   */
  collect?: (dir: string) => Promise<OutputFile[]>
}

/** A running command, for the owner policy: SIGSTOP / SIGCONT to all of it; its time limit pauses meanwhile. */
export interface CommandHandle {
  suspend(): void
  resume(): void
}

/** What `ok` command tasks return (encoded). */
export interface CommandResult {
  exitCode: 0
  stdout: string
  stderr: string
  stdoutTruncated: boolean
  stderrTruncated: boolean
}

const DEFAULT_MAX_BYTES = 1 << 20
const KILL_GRACE_MS = 2000
/** After the command exits, how long to wait for its output pipes to close. */
const CLOSE_GRACE_MS = 1000
const TAIL_LINES = 20
const TAIL_CHARS = 4000
/** The whole command line after substituting `{}` (Linux refuses more than ARG_MAX, typically 2 MiB). */
export const MAX_ARGV_CHARS = 4 * 1024 * 1024

export async function runCommand(task: CommandTask): Promise<TaskOutcome> {
  const start = performance.now()
  const elapsed = () => performance.now() - start
  if (task.signal?.aborted) return { status: 'rejected', error: 'cancelled', durationMs: 0 }
  if (task.argv.length === 0 || typeof task.argv[0] !== 'string' || task.argv[0] === '') {
    return { status: 'rejected', error: 'command has no executable (argv is empty)', durationMs: elapsed() }
  }
  let arg: string
  try {
    arg = inputText(decodeValue(task.input))
  } catch (err) {
    return {
      status: 'rejected',
      error: `cannot decode the task's input: ${(err as Error).message}`,
      durationMs: elapsed(),
    }
  }
  const argvBytes = task.argv.reduce((n, a) => n + a.length + (a.split('{}').length - 1) * arg.length, 0)
  if (argvBytes > MAX_ARGV_CHARS) {
    return {
      status: 'rejected',
      error: `the command line with the input substituted is ${argvBytes} characters (max ${MAX_ARGV_CHARS})`,
      durationMs: elapsed(),
    }
  }
  const argv = task.argv.map((a) => (a.includes('{}') ? a.split('{}').join(arg) : a))
  if (task.sandbox !== undefined) {
    const outcome = await spawnAndWait(task, argv, {})
    return { ...outcome, durationMs: elapsed() } as TaskOutcome
  }
  try {
    await removeTree(task.scratchDir)
    await mkdir(task.scratchDir, { recursive: true })
    await task.stage?.(task.scratchDir)
  } catch (err) {
    return {
      status: 'crashed',
      error: `cannot make scratch dir: ${(err as Error).message}`,
      durationMs: elapsed(),
    }
  }
  try {
    const outcome = await collectAfter(
      task,
      await spawnAndWait(task, argv, commandEnv(task)),
      task.scratchDir,
    )
    return { ...outcome, durationMs: elapsed() } as TaskOutcome
  } finally {
    await task.unstage?.(task.scratchDir).catch(() => undefined)
    await removeTree(task.scratchDir).catch(() => undefined)
  }
}

/**
 * Values JSON.stringify may visit for one input: a decoded value can reach
 * more values than it has bytes (shared references, sparse holes), and an
 * argument is at most 128 KiB on Linux anyway.
 */
export const MAX_INPUT_VISITS = 1 << 20

function inputText(v: unknown): string {
  if (v === undefined) return ''
  if (typeof v === 'string') return v
  let visits = 0
  const bounded = (_key: string, value: unknown) => {
    if (++visits > MAX_INPUT_VISITS) throw new InputTooLargeError()
    return value
  }
  try {
    return JSON.stringify(v, bounded) ?? String(v)
  } catch (err) {
    if (err instanceof InputTooLargeError) throw err
    // BigInt, cycles: JSON has no text for them. String() of a plain value is short.
    if (typeof v === 'object' && v !== null && !(v instanceof Date) && !(v instanceof RegExp)) {
      throw new InputTooLargeError('the input has no JSON text (a BigInt or a cycle inside)')
    }
    return String(v)
  }
}

class InputTooLargeError extends Error {
  constructor(message = `the input expands to more than ${MAX_INPUT_VISITS} values as JSON`) {
    super(message)
  }
}

function commandEnv(task: CommandTask): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, ...task.env }
  if (task.gpuTask || task.gpus.length > 0) {
    env.CUDA_VISIBLE_DEVICES = task.gpus.join(',')
    env.CUDA_DEVICE_ORDER = 'PCI_BUS_ID'
  }
  return env
}

type Ending = { status: TaskOutcome['status']; error?: string; value?: Uint8Array; outputs?: OutputFile[] }

/** An exit 0 brings its outputs back (a failure to do so fails the task with the reason). */
async function collectAfter(task: CommandTask, ending: Ending, dir: string): Promise<Ending> {
  if (ending.status !== 'ok' || task.collect === undefined) return ending
  try {
    return { ...ending, outputs: await task.collect(dir) }
  } catch (err) {
    return { status: 'threw', error: `outputs: ${(err as Error).message}` }
  }
}

function spawnAndWait(task: CommandTask, argv: string[], env: NodeJS.ProcessEnv): Promise<Ending> {
  return new Promise((resolve) => {
    // Whatever the job says: the output is held here, in memory.
    const max = Math.min(
      task.stdoutMaxBytes > 0 ? task.stdoutMaxBytes : DEFAULT_MAX_BYTES,
      MAX_COMMAND_OUTPUT_BYTES,
    )
    const stdout = new HeadCapture(max)
    const stderr = new TailCapture(max)
    let child: ChildProcessByStdio<null, Readable, Readable>
    let sandbox: SandboxProcess | undefined
    // The job's memory as a real limit (RLIMIT_DATA: heap and private mappings), as the sandbox sets it.
    const limited = task.sandbox === undefined && (task.memoryMB ?? 0) > 0
    try {
      if (task.sandbox !== undefined) {
        sandbox = task.sandbox(argv, task.env)
        child = sandbox.child as ChildProcessByStdio<null, Readable, Readable>
      } else {
        const bytes = Math.ceil((task.memoryMB ?? 0) * 1024 * 1024)
        const cmd = limited ? ['prlimit', `--data=${bytes}`, '--', ...argv] : argv
        child = spawn(cmd[0], cmd.slice(1), {
          cwd: task.scratchDir,
          env,
          stdio: ['ignore', 'pipe', 'pipe'],
          detached: true,
        })
      }
    } catch (err) {
      // Arguments spawn refuses outright (a NUL byte, say).
      resolve({ status: 'rejected', error: `cannot start command ${argv[0]}: ${(err as Error).message}` })
      return
    }
    let killedFor: 'timeout' | 'cancelled' | undefined
    let exit: { code: number | null; signal: NodeJS.Signals | null } | undefined
    let settled = false
    const timers: NodeJS.Timeout[] = []
    // A sandbox dies whole with its bwrap (its PID namespace); a plain command by its process group.
    const killAll = (sig: NodeJS.Signals) =>
      sandbox === undefined ? killGroup(child.pid, sig) : killGroup(child.pid, 'SIGKILL')
    const kill = (why: 'timeout' | 'cancelled') => {
      if (killedFor !== undefined || exit !== undefined) return
      killedFor = why
      killAll('SIGTERM')
      timers.push(setTimeout(() => killAll('SIGKILL'), KILL_GRACE_MS))
    }
    const onAbort = () => kill('cancelled')
    const finish = (ending: Ending) => {
      if (settled) return
      settled = true
      for (const t of timers) clearTimeout(t)
      clock.stop()
      task.signal?.removeEventListener('abort', onAbort)
      child.stdout.destroy()
      child.stderr.destroy()
      if (sandbox === undefined) resolve(ending)
      else {
        const box = sandbox
        void collectAfter(task, ending, box.work).then(async (e) => {
          await box.dispose()
          resolve(e)
        })
      }
    }
    const clock = new Deadline(task.timeoutMs, () => kill('timeout'))
    task.onStart?.({
      suspend: () => {
        if (exit !== undefined || settled) return
        clock.pause()
        if (sandbox !== undefined) sandbox.signal('SIGSTOP')
        else killGroup(child.pid, 'SIGSTOP')
      },
      resume: () => {
        if (exit !== undefined || settled) return
        if (sandbox !== undefined) sandbox.signal('SIGCONT')
        else killGroup(child.pid, 'SIGCONT')
        clock.resume()
      },
    })
    task.signal?.addEventListener('abort', onAbort, { once: true })
    child.stdout.on('data', (c: Buffer) => stdout.add(c))
    child.stderr.on('data', (c: Buffer) => stderr.add(c))
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (child.pid !== undefined) return
      finish({ status: 'rejected', error: spawnErrorMessage(argv[0], err) })
    })
    child.on('exit', (code, signal) => {
      exit = { code, signal }
      killAll('SIGKILL')
      timers.push(setTimeout(() => finish(endingSafely()), CLOSE_GRACE_MS))
    })
    child.on('close', () => {
      if (exit !== undefined) finish(endingSafely())
    })
    // Runs in the child's event handlers: whatever it throws must end the task, not the daemon.
    const endingSafely = (): Ending => {
      try {
        return ending()
      } catch (err) {
        return { status: 'threw', error: `cannot read the command's output: ${(err as Error).message}` }
      }
    }
    const ending = (): Ending => {
      if (killedFor === 'timeout')
        return { status: 'timeout', error: `command timed out after ${task.timeoutMs} ms` }
      if (killedFor === 'cancelled') return { status: 'rejected', error: 'cancelled' }
      const out = stdout.text()
      const errText = stderr.text()
      if ((sandbox !== undefined || limited) && (exit?.code === 126 || exit?.code === 127)) {
        // prlimit or setpriv could not exec the command (inside the sandbox, or under the memory limit).
        const m = /: failed to execute .*: (.*)\n?$/m.exec(errText)
        if (m !== null) {
          const what = exit.code === 127 ? 'command not found' : 'command is not executable'
          return { status: 'rejected', error: `${what}: ${argv[0]} (${m[1].trim()})` }
        }
      }
      if (exit?.code === 0) {
        const result: CommandResult = {
          exitCode: 0,
          stdout: out,
          stderr: errText,
          stdoutTruncated: stdout.truncated,
          stderrTruncated: stderr.truncated,
        }
        return { status: 'ok', value: encodeValue(result) }
      }
      const how =
        exit?.signal != null
          ? `was killed by signal ${exit.signal}`
          : `exited with code ${exit?.code ?? 'unknown'}`
      const [name, text] = errText.trim() !== '' ? ['stderr', errText] : ['stdout', out]
      return { status: 'threw', error: `command ${how}${tailOf(name, text)}` }
    }
  })
}

/** A time limit that can be paused (a suspended task's clock stops). */
class Deadline {
  private readonly onExpire: () => void
  private remainingMs: number
  private timer: NodeJS.Timeout | undefined
  private startedAt = 0

  constructor(limitMs: number, onExpire: () => void) {
    this.onExpire = onExpire
    this.remainingMs = limitMs
    if (limitMs > 0) this.resume()
  }

  pause(): void {
    if (this.timer === undefined) return
    clearTimeout(this.timer)
    this.timer = undefined
    this.remainingMs -= performance.now() - this.startedAt
  }

  resume(): void {
    if (this.timer !== undefined || this.remainingMs <= 0) return
    this.startedAt = performance.now()
    this.timer = setTimeout(this.onExpire, Math.max(1, this.remainingMs))
  }

  stop(): void {
    clearTimeout(this.timer)
    this.timer = undefined
    this.remainingMs = 0
  }
}

function spawnErrorMessage(cmd: string, err: NodeJS.ErrnoException): string {
  if (err.code === 'ENOENT') return `command not found: ${cmd}`
  if (err.code === 'EACCES') return `command is not executable: ${cmd}`
  return `cannot start command ${cmd}: ${err.message}`
}

function killGroup(pid: number | undefined, signal: NodeJS.Signals): void {
  if (pid === undefined) return
  try {
    process.kill(-pid, signal)
  } catch {
    try {
      process.kill(pid, signal)
    } catch {
      // Already gone.
    }
  }
}

function tailOf(name: string, text: string): string {
  const lines = text.replace(/\s+$/, '').split('\n')
  if (lines.length === 1 && lines[0] === '') return ''
  let tail = lines.slice(-TAIL_LINES).join('\n')
  if (tail.length > TAIL_CHARS) tail = `…${tail.slice(-TAIL_CHARS)}`
  const which = lines.length > TAIL_LINES ? `last ${TAIL_LINES} lines of ${name}` : name
  return `\n--- ${which} ---\n${tail}`
}

/** Keeps the first `max` bytes. */
class HeadCapture {
  private readonly max: number
  private readonly chunks: Buffer[] = []
  private size = 0
  truncated = false

  constructor(max: number) {
    this.max = max
  }

  add(chunk: Buffer): void {
    const room = this.max - this.size
    if (chunk.length > room) {
      this.truncated = true
      if (room <= 0) return
      chunk = chunk.subarray(0, room)
    }
    this.chunks.push(chunk)
    this.size += chunk.length
  }

  text(): string {
    return Buffer.concat(this.chunks).toString('utf8')
  }
}

/** Keeps the last `max` bytes. */
class TailCapture {
  private readonly max: number
  private chunks: Buffer[] = []
  private size = 0
  truncated = false

  constructor(max: number) {
    this.max = max
  }

  add(chunk: Buffer): void {
    this.chunks.push(chunk)
    this.size += chunk.length
    while (this.chunks.length > 1 && this.size - this.chunks[0].length >= this.max) {
      this.size -= this.chunks[0].length
      this.chunks.shift()
      this.truncated = true
    }
  }

  text(): string {
    const all = Buffer.concat(this.chunks)
    if (all.length <= this.max) return all.toString('utf8')
    this.truncated = true
    return all.subarray(all.length - this.max).toString('utf8')
  }
}
