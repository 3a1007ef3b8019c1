/**
 * Optional network emulation for the live harness: when running as root
 * with `ip netns` and the netem qdisc available, the harness re-runs itself
 * inside a fresh network namespace whose loopback delays and drops packets
 * (every daemon, and the harness's API calls, then share that loopback).
 * Anything missing: say why and run on the plain loopback.
 */
import { spawnSync } from 'node:child_process'

export interface Netem {
  delayMs: number
  jitterMs: number
  lossPct: number
}

/** Parses "delay=20ms,jitter=5ms,loss=1%". */
export function parseNetem(s: string): Netem {
  const n: Netem = { delayMs: 0, jitterMs: 0, lossPct: 0 }
  for (const part of s.split(',')) {
    const [k, v] = part.split('=')
    const x = Number.parseFloat(v ?? '')
    if (!Number.isFinite(x) || x < 0) throw new Error(`--netem: bad value in ${part}`)
    if (k === 'delay') n.delayMs = x
    else if (k === 'jitter') n.jitterMs = x
    else if (k === 'loss') n.lossPct = x
    else throw new Error(`--netem takes delay=, jitter= and loss=, not ${k}`)
  }
  return n
}

function sh(args: string[]): { ok: boolean; out: string } {
  const r = spawnSync(args[0], args.slice(1), { encoding: 'utf8' })
  return { ok: r.status === 0, out: `${r.stdout ?? ''}${r.stderr ?? ''}${r.error?.message ?? ''}`.trim() }
}

/** Why netem cannot be used here, or undefined if it can (probed in a throwaway namespace). */
export function netemUnavailable(): string | undefined {
  if (process.getuid?.() !== 0) return 'not running as root'
  const ns = `gridsim-probe-${process.pid}`
  const add = sh(['ip', 'netns', 'add', ns])
  if (!add.ok) return `ip netns does not work: ${add.out}`
  try {
    const q = sh([
      'ip',
      'netns',
      'exec',
      ns,
      'tc',
      'qdisc',
      'add',
      'dev',
      'lo',
      'root',
      'netem',
      'delay',
      '1ms',
    ])
    return q.ok ? undefined : `the netem qdisc is not available: ${q.out}`
  } finally {
    sh(['ip', 'netns', 'del', ns])
  }
}

/** Runs `argv` inside a new namespace with netem on its loopback; returns the exit code. */
export function runInNetns(n: Netem, argv: string[], env: NodeJS.ProcessEnv): number {
  const ns = `gridsim-${process.pid}`
  const must = (args: string[]) => {
    const r = sh(args)
    if (!r.ok) throw new Error(`${args.join(' ')}: ${r.out}`)
  }
  must(['ip', 'netns', 'add', ns])
  try {
    must(['ip', 'netns', 'exec', ns, 'ip', 'link', 'set', 'lo', 'up'])
    const q = ['tc', 'qdisc', 'add', 'dev', 'lo', 'root', 'netem', 'delay', `${n.delayMs}ms`]
    if (n.jitterMs > 0) q.push(`${n.jitterMs}ms`)
    if (n.lossPct > 0) q.push('loss', `${n.lossPct}%`)
    must(['ip', 'netns', 'exec', ns, ...q])
    const r = spawnSync('ip', ['netns', 'exec', ns, ...argv], { stdio: 'inherit', env })
    return r.status ?? 3
  } finally {
    sh(['ip', 'netns', 'del', ns])
  }
}
