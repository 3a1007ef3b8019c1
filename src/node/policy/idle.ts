/**
 * Is the machine's user busy? Measured from /proc: the CPU used by processes
 * outside gridnode (all CPU time in /proc/stat minus the daemon's own process
 * tree, children included) over a sliding window; and, where readable,
 * terminal input (the newest access time of /dev/pts/* and /dev/tty[0-9]*, as
 * w(1) reads idle times). Keyboard and mouse of a graphical session are not
 * visible to an unprivileged daemon (/dev/input needs root): that part is
 * skipped. Not Linux: never busy.
 *
 * The measurement is injectable (`ActivityProbe`), so tests can fake "busy".
 */
import { readdirSync, readFileSync, statSync } from 'node:fs'

export interface ActivitySample {
  /** ms (monotonic or wall; only differences are used). */
  at: number
  /** Jiffies since boot: all CPUs, all time. */
  total: number
  /** Jiffies not idle (all processes). */
  busy: number
  /** Jiffies used by the daemon's process tree. */
  ours: number
  /** Newest terminal input (ms since the epoch), if readable. */
  inputAt?: number
}

export interface ActivityProbe {
  sample(): ActivitySample | undefined
}

export interface Activity {
  /** Share of all CPU used outside gridnode over the window (0-1), when known. */
  cpuOutside?: number
  /** ms since the last terminal input, when known. */
  inputIdleMs?: number
  busy: boolean
  /** Why busy (for status and logs). */
  why: string
}

/** Reads /proc (Linux). */
export class ProcProbe implements ActivityProbe {
  private readonly pid: number

  constructor(pid = process.pid) {
    this.pid = pid
  }

  sample(): ActivitySample | undefined {
    let stat: string
    try {
      stat = readFileSync('/proc/stat', 'utf8')
    } catch {
      return undefined
    }
    const cpu = stat.split('\n', 1)[0].trim().split(/\s+/).slice(1).map(Number)
    // user nice system idle iowait irq softirq steal (guest time is already inside user/nice).
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0)
    const busy = total - cpu[3] - (cpu[4] ?? 0)
    return { at: Date.now(), total, busy, ours: treeJiffies(this.pid), inputAt: newestInput() }
  }
}

/** utime + stime of `root` and every descendant, plus what reaped children used (cutime + cstime of the root). */
export function treeJiffies(root: number): number {
  const parent = new Map<number, number>()
  const used = new Map<number, number>()
  let names: string[]
  try {
    names = readdirSync('/proc')
  } catch {
    return 0
  }
  for (const name of names) {
    if (!/^\d+$/.test(name)) continue
    const f = procStat(Number(name))
    if (f === undefined) continue
    parent.set(Number(name), f.ppid)
    used.set(Number(name), f.utime + f.stime + (Number(name) === root ? f.cutime + f.cstime : 0))
  }
  let sum = 0
  for (const [pid, jiffies] of used) {
    let p: number | undefined = pid
    for (let depth = 0; p !== undefined && p > 1 && depth < 64; depth++) {
      if (p === root) {
        sum += jiffies
        break
      }
      p = parent.get(p)
    }
  }
  return sum
}

export interface ProcStat {
  state: string
  ppid: number
  pgrp: number
  session: number
  utime: number
  stime: number
  cutime: number
  cstime: number
}

/** Fields of /proc/<pid>/stat (the name may hold spaces and parentheses: parse after the last ')'). */
export function procStat(pid: number): ProcStat | undefined {
  let text: string
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  } catch {
    return undefined
  }
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  // f[0] = field 3 (state); utime is field 14 -> f[11].
  return {
    state: f[0],
    ppid: Number(f[1]),
    pgrp: Number(f[2]),
    session: Number(f[3]),
    utime: Number(f[11]),
    stime: Number(f[12]),
    cutime: Number(f[13]),
    cstime: Number(f[14]),
  }
}

function newestInput(): number | undefined {
  let newest: number | undefined
  const consider = (path: string) => {
    try {
      const t = statSync(path).atimeMs
      if (newest === undefined || t > newest) newest = t
    } catch {
      // unreadable: skipped
    }
  }
  try {
    for (const n of readdirSync('/dev/pts')) if (/^\d+$/.test(n)) consider(`/dev/pts/${n}`)
  } catch {
    // no /dev/pts
  }
  for (let i = 1; i <= 12; i++) consider(`/dev/tty${i}`)
  return newest
}

/**
 * Keeps samples over the window and judges busy/idle: busy when processes
 * outside gridnode used more than `busyCpu` of all CPU over the window, or
 * there was terminal input within it.
 */
export class IdleMonitor {
  private readonly probe: ActivityProbe
  private samples: ActivitySample[] = []
  /** A test hook: true/false overrides the measurement; undefined measures. */
  forced: boolean | undefined

  constructor(probe: ActivityProbe = new ProcProbe()) {
    this.probe = probe
  }

  check(windowMs: number, busyCpu: number, now = Date.now()): Activity {
    const s = this.probe.sample()
    if (s !== undefined) {
      this.samples.push(s)
      while (this.samples.length > 2 && this.samples[1].at <= s.at - windowMs) this.samples.shift()
    }
    if (this.forced !== undefined)
      return { busy: this.forced, why: this.forced ? 'marked busy (test hook)' : 'marked idle (test hook)' }
    if (s === undefined) return { busy: false, why: 'no /proc/stat: activity unknown' }
    const first = this.samples[0]
    const dTotal = s.total - first.total
    const outside =
      dTotal > 0 ? Math.max(0, s.busy - first.busy - Math.max(0, s.ours - first.ours)) / dTotal : undefined
    const inputIdleMs = s.inputAt === undefined ? undefined : Math.max(0, now - s.inputAt)
    if (outside !== undefined && outside > busyCpu)
      return {
        cpuOutside: outside,
        inputIdleMs,
        busy: true,
        why: `CPU used outside gridnode ${pct(outside)}`,
      }
    if (inputIdleMs !== undefined && inputIdleMs < windowMs)
      return { cpuOutside: outside, inputIdleMs, busy: true, why: 'terminal input' }
    return { cpuOutside: outside, inputIdleMs, busy: false, why: 'idle' }
  }
}

function pct(x: number): string {
  return `${Math.round(x * 100)}%`
}
