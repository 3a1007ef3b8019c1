/**
 * Signals to a whole sandbox: bwrap, its PID-namespace init and everything
 * under them, found through /proc (a sandbox's processes are in their own
 * session, so a process-group signal from outside would miss them).
 */
import { readdirSync, readFileSync } from 'node:fs'

/** Processes under `pid` (not itself), parents before children. */
export function descendants(pid: number): number[] {
  const out: number[] = []
  const seen = new Set<number>([pid])
  const queue = [pid]
  while (queue.length > 0 && out.length < 100_000) {
    for (const child of childrenOf(queue.shift()!)) {
      if (seen.has(child)) continue
      seen.add(child)
      out.push(child)
      queue.push(child)
    }
  }
  return out
}

function childrenOf(pid: number): number[] {
  const out: number[] = []
  let tasks: string[]
  try {
    tasks = readdirSync(`/proc/${pid}/task`)
  } catch {
    return out
  }
  for (const tid of tasks) {
    try {
      for (const s of readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').split(' ')) {
        const n = Number(s)
        if (s !== '' && Number.isInteger(n) && n > 0) out.push(n)
      }
    } catch {
      // Gone meanwhile.
    }
  }
  return out
}

/**
 * Sends `signal` to `pid` and every process under it. For SIGSTOP it goes
 * round again until no new process appears (one stopped cannot fork), so a
 * forking task cannot slip out of a suspension.
 */
export function signalTree(pid: number, signal: NodeJS.Signals): number {
  const done = new Set<number>()
  const send = (p: number) => {
    if (done.has(p)) return
    done.add(p)
    try {
      process.kill(p, signal)
    } catch {
      // Gone, or not ours to signal.
    }
  }
  send(pid)
  for (let round = 0; round < 50; round++) {
    const before = done.size
    for (const p of descendants(pid)) send(p)
    if (signal !== 'SIGSTOP' || done.size === before) break
  }
  return done.size
}
