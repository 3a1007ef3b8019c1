/**
 * Whether this machine can sandbox tasks, decided once at start by running
 * a real sandboxed worker up to its first frame: bwrap, namespaces, the
 * binds, prlimit/setpriv and the Node binary all have to work for it to.
 */
import { accessSync, constants } from 'node:fs'
import { delimiter, join } from 'node:path'
import { FrameReader } from './frames.ts'
import { SandboxHost, type SandboxHostOptions } from './host.ts'
import type { SandboxMode, SandboxStatus } from './index.ts'

export interface ProbeOptions extends Omit<SandboxHostOptions, 'bwrap'> {
  /** bwrap executable (default: looked up on PATH, then /usr/bin/bwrap). */
  bwrap?: string
  timeoutMs?: number
}

export interface ProbeResult {
  status: SandboxStatus
  /** Set when sandboxes can be started. */
  host?: SandboxHost
}

export async function probeSandbox(mode: SandboxMode, opts: ProbeOptions): Promise<ProbeResult> {
  if (mode === 'none') {
    return {
      status: {
        mode,
        available: false,
        acceptsForeign: true,
        reason: '--sandbox none: tasks from other nodes run unsandboxed, with this daemon’s rights',
      },
    }
  }
  const refuse = (reason: string): ProbeResult => ({
    status: { mode, available: false, acceptsForeign: false, reason },
  })
  if (process.platform !== 'linux')
    return refuse(`no sandbox on ${process.platform} (bubblewrap needs Linux)`)
  const bwrap = opts.bwrap ?? findExecutable('bwrap')
  if (bwrap === undefined) return refuse('bubblewrap is not installed (apt-get install bubblewrap)')
  let host: SandboxHost
  try {
    host = new SandboxHost({ ...opts, bwrap })
  } catch (err) {
    return refuse(`cannot prepare sandboxes: ${(err as Error).message}`)
  }
  const failure = await tryWorker(host, opts.timeoutMs ?? 15_000)
  if (failure !== undefined) {
    await host.close()
    return refuse(`bubblewrap does not work here: ${failure}`)
  }
  const how = host.privileged ? 'a uid of its own per sandbox' : 'the daemon’s user in a user namespace'
  return {
    status: {
      mode,
      available: true,
      acceptsForeign: true,
      reason: `bubblewrap (${bwrap}): tasks from other nodes run sandboxed, as ${how}`,
    },
    host,
  }
}

/** Starts one sandboxed worker and waits for its ready frame; the reason it failed, or undefined. */
async function tryWorker(host: SandboxHost, timeoutMs: number): Promise<string | undefined> {
  let proc: ReturnType<SandboxHost['startWorker']>
  try {
    proc = host.startWorker({ memoryMB: 0, gpus: undefined })
  } catch (err) {
    return (err as Error).message
  }
  let stderr = ''
  proc.child.stderr?.on('data', (c: Buffer) => {
    stderr = (stderr + c.toString('utf8')).slice(-2000)
  })
  const reader = new FrameReader()
  const outcome = await new Promise<string | undefined>((resolve) => {
    const timer = setTimeout(() => resolve(`no answer from a sandboxed worker in ${timeoutMs} ms`), timeoutMs)
    const done = (v: string | undefined) => {
      clearTimeout(timer)
      resolve(v)
    }
    ;(proc.child.stdio[3] as NodeJS.ReadableStream | null)?.on('data', (c: Buffer) => {
      try {
        if (reader.push(c).length > 0) done(undefined)
      } catch (err) {
        done((err as Error).message)
      }
    })
    proc.child.on('error', (err) => done(err.message))
    proc.child.on('close', (code, signal) => {
      const last = stderr.trim().split('\n').slice(-3).join(' / ')
      done(`a sandboxed worker exited (${code ?? signal})${last ? `: ${last}` : ''}`)
    })
  })
  await proc.dispose()
  return outcome
}

export function findExecutable(name: string): string | undefined {
  const dirs = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin', '/bin', '/usr/local/bin']
  for (const dir of dirs) {
    if (dir === '') continue
    const path = join(dir, name)
    try {
      accessSync(path, constants.X_OK)
      return path
    } catch {
      // Not here.
    }
  }
  return undefined
}
