/**
 * Stopping and continuing running tasks for the owner policy (SIGSTOP /
 * SIGCONT to their process groups).
 *
 * When the executor offers it (the sandbox executor's `suspend(key)` /
 * `resume(key)`), that is used. Otherwise this finds the process group of each
 * command task itself: the command runner starts every command as the
 * leader of its own process group (detached) in the task's scratch
 * directory, so a child of the daemon whose working directory is that
 * scratch directory is the group to signal. Function tasks in worker
 * threads cannot be stopped this way: they keep running until handed back.
 */
import { readdirSync, readlinkSync } from 'node:fs'
import { basename, dirname } from 'node:path'
import { scratchName, scratchRoot } from '../../executor/scratch.ts'
import type { TaskKey } from '../../scheduler/types.ts'
import { procStat } from './idle.ts'

export type StopSignal = 'SIGSTOP' | 'SIGCONT'

/** What the sandbox executor may offer (duck-typed: absent on the plain executor). */
export interface SignalingExecutor {
  suspend?(task: TaskKey): boolean
  resume?(task: TaskKey): boolean
}

/** The name executor.ts used before scratch.ts (kept so a daemon mid-upgrade still finds its tasks). */
function legacyScratchName(t: TaskKey): string {
  return `${t.job.replace(/[^A-Za-z0-9._-]/g, '_')}-${t.index}-${t.attempt}`
}

/** Process groups led by children of `parent` running in one of `dirs` (by directory name). */
export function groupsIn(parent: number, root: string, names: Set<string>): number[] {
  const out: number[] = []
  let pids: string[]
  try {
    pids = readdirSync('/proc')
  } catch {
    return out
  }
  for (const p of pids) {
    if (!/^\d+$/.test(p)) continue
    const pid = Number(p)
    const st = procStat(pid)
    if (st === undefined || st.ppid !== parent || st.pgrp !== pid) continue
    let cwd: string
    try {
      cwd = readlinkSync(`/proc/${pid}/cwd`)
    } catch {
      continue
    }
    if (dirname(cwd) === root && names.has(basename(cwd))) out.push(pid)
  }
  return out
}

export class TaskSignals {
  private readonly dataDir: string
  private readonly executor: () => SignalingExecutor | undefined

  constructor(dataDir: string, executor: () => SignalingExecutor | undefined) {
    this.dataDir = dataDir
    this.executor = executor
  }

  /** Signals the tasks' process groups; returns how many groups were signalled. */
  signal(tasks: TaskKey[], signal: StopSignal): number {
    if (tasks.length === 0) return 0
    const ex = this.executor()
    const hook = signal === 'SIGSTOP' ? ex?.suspend : ex?.resume
    let n = 0
    if (typeof hook === 'function') {
      const rest = tasks.filter((t) => !hook.call(ex, t))
      n = tasks.length - rest.length
      tasks = rest
      if (tasks.length === 0) return n
    }
    // The executor could not: look for the command's process group ourselves.
    const names = new Set(tasks.flatMap((t) => [scratchName(t), legacyScratchName(t)]))
    for (const pgid of groupsIn(process.pid, scratchRoot(this.dataDir), names)) {
      try {
        process.kill(-pgid, signal)
        n++
      } catch {
        // gone meanwhile
      }
    }
    return n
  }
}
