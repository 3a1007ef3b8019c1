/**
 * `<data-dir>/policy.json` (mode 0600): the node's trust policy (who may run
 * which kinds of task here, network, sandbox), its owner policy (when and how
 * much of the machine the mesh may use) and its disk hygiene settings. Every
 * key is validated with a one-line error; `gridnode policy set` goes through
 * the control API, which writes the file and applies it without a restart.
 */
import { chmodSync, readFileSync, renameSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { GridnodeError } from '../../errors.ts'
import { isPeerIdString, MAX_ACCESS_PEERS } from '../../protocol/schemas.ts'
import { parseHours } from './hours.ts'

export const POLICY_FILE = 'policy.json'

/** `all`, or the peer IDs allowed. */
export type Allow = 'all' | string[]

export interface Policy {
  /** Who may run function tasks here. */
  function: Allow
  /** Who may run command tasks here. */
  command: Allow
  /** Who may run tasks that need a GPU here (on top of their kind). */
  gpu: Allow
  /** Whether tasks from other nodes may use the network (passed to the sandbox per run). */
  network: boolean
  /** Sandbox mode; unset = the daemon's --sandbox. Takes effect at the next start. */
  sandbox?: 'auto' | 'bwrap' | 'none'
  /** Run this node's own tasks in the sandbox too. */
  sandboxOwn: boolean
  /** Owner policy: lend the machine always, or only while its user is idle. */
  when: 'always' | 'idle'
  /** With `idle`: the user is busy when processes outside gridnode use more than this share of the CPU. */
  busyCpu: number
  /** With `idle`: the sliding window (ms) over which CPU use and input activity are measured. */
  idleWindowMs: number
  /** Suspended this long (ms), foreign tasks are handed back to their owners. */
  graceMs: number
  /** Share of the task slots other nodes' tasks may use (0-1]. */
  maxCpuShare: number
  /** Time windows in which the node lends slots, e.g. `19-07` or `12:00-13:30,19-07`; '' = always. */
  hours: string
  /** Blob cache quota (bytes); least recently used blobs not in use are evicted above it. */
  blobQuota: number
  /** Finished job records older than this (ms) are pruned. */
  jobRetentionMs: number
}

export const DEFAULT_POLICY: Policy = {
  function: 'all',
  command: 'all',
  gpu: 'all',
  network: false,
  sandboxOwn: false,
  when: 'always',
  busyCpu: 0.25,
  idleWindowMs: 30_000,
  graceMs: 120_000,
  maxCpuShare: 1,
  hours: '',
  blobQuota: 10 * 1024 ** 3,
  jobRetentionMs: 30 * 86_400_000,
}

export const POLICY_KEYS = Object.keys(DEFAULT_POLICY).concat('sandbox') as Array<keyof Policy>

/**
 * The names `gridnode policy set` takes and lists, as the README and --help spell them, in their
 * order; policy.json keeps the keys of Policy (`idleWindowMs`, …), which `set` takes too.
 */
const CLI_NAMES: Record<keyof Policy, string> = {
  function: 'function',
  command: 'command',
  gpu: 'gpu',
  network: 'network',
  sandbox: 'sandbox',
  sandboxOwn: 'sandboxOwn',
  when: 'when',
  busyCpu: 'busyCpu',
  idleWindowMs: 'idleWindow',
  graceMs: 'grace',
  maxCpuShare: 'maxCpuShare',
  hours: 'hours',
  blobQuota: 'blobQuota',
  jobRetentionMs: 'jobRetention',
}

export class BadPolicyError extends GridnodeError {
  constructor(message: string) {
    super('GN_BAD_POLICY', message)
  }
}

const SIZE_UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 }
const TIME_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }

function sizeBytes(key: string, v: unknown): number {
  if (typeof v === 'number' && Number.isInteger(v) && v >= 0) return v
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?$/i.exec(v.trim()) : null
  if (!m) throw new BadPolicyError(`${key} ${JSON.stringify(v)}: expected bytes, or a size like 500M or 10G`)
  return Math.round(Number(m[1]) * SIZE_UNITS[m[2].toLowerCase()])
}

const DURATION_EXAMPLES: Array<[string, number]> = [
  ['500ms', 500],
  ['30s', 30_000],
  ['2m', 120_000],
  ['12h', 43_200_000],
  ['30d', 2_592_000_000],
]

/** Milliseconds (a number, or digits as the CLI sends them), or a number with a unit: 500ms, 30s, 2m, 12h, 30d. */
function durationMs(key: string, v: unknown, min: number): number {
  let ms: number | undefined
  if (typeof v === 'number' && Number.isFinite(v)) ms = v
  const m = typeof v === 'string' ? /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i.exec(v.trim()) : null
  if (m) ms = Math.round(Number(m[1]) * TIME_UNITS[(m[2] ?? 'ms').toLowerCase()])
  if (ms === undefined || ms < min) {
    const least = min > 0 ? ` of at least ${durationText(min)}` : ''
    const like = DURATION_EXAMPLES.filter(([, n]) => n >= min)
      .slice(0, 3)
      .map(([t]) => t)
    throw new BadPolicyError(
      `${key} ${JSON.stringify(v)}: expected a duration${least}: milliseconds, or like ${like.join(', ')}`,
    )
  }
  return ms
}

/** 1000 → 1s, 60000 → 1m. */
function durationText(ms: number): string {
  for (const [unit, n] of [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ] as const) {
    if (ms % n === 0) return `${ms / n}${unit}`
  }
  return `${ms}ms`
}

function fraction(key: string, v: unknown, zeroOk: boolean): number {
  const n = typeof v === 'string' && v.trim() !== '' ? Number(v) : v
  if (typeof n !== 'number' || !Number.isFinite(n) || n > 1 || n < 0 || (!zeroOk && n === 0))
    throw new BadPolicyError(
      `${key} ${JSON.stringify(v)}: expected a fraction ${zeroOk ? 'from 0' : 'above 0'} to 1, like 0.5`,
    )
  return n
}

function boolean(key: string, v: unknown): boolean {
  if (v === true || v === 'true' || v === 'yes' || v === 'on') return true
  if (v === false || v === 'false' || v === 'no' || v === 'off') return false
  throw new BadPolicyError(`${key} ${JSON.stringify(v)}: expected true or false`)
}

function allow(key: string, v: unknown): Allow {
  if (v === 'all') return 'all'
  const list = typeof v === 'string' ? v.split(',').map((s) => s.trim()) : v
  const what = `${key} ${JSON.stringify(v).slice(0, 80)}: expected "all", "none" or a comma list of peer IDs`
  if (list === 'none' || (Array.isArray(list) && list.length === 1 && list[0] === 'none')) return []
  if (!Array.isArray(list)) throw new BadPolicyError(what)
  const peers = list.filter((p) => p !== '')
  for (const p of peers) {
    if (typeof p !== 'string' || !isPeerIdString(p))
      throw new BadPolicyError(`${what} (${JSON.stringify(p).slice(0, 60)} is not a peer ID)`)
  }
  if (peers.length > MAX_ACCESS_PEERS)
    throw new BadPolicyError(`${key}: at most ${MAX_ACCESS_PEERS} peer IDs (got ${peers.length})`)
  return [...new Set(peers as string[])]
}

function oneOf<T extends string>(key: string, v: unknown, choices: readonly T[]): T {
  if (typeof v === 'string' && (choices as readonly string[]).includes(v)) return v as T
  throw new BadPolicyError(`${key} ${JSON.stringify(v)}: expected one of ${choices.join(', ')}`)
}

/** Checks one key's value (a string from the CLI or a JSON value from the file); returns it parsed. */
export function parsePolicyValue<K extends keyof Policy>(key: K, value: unknown): Policy[K] {
  return parseValue(key, value) as Policy[K]
}

/** `name`: what messages call the key (the name the user typed; default the key). */
function parseValue(key: keyof Policy, v: unknown, name: string = key): Policy[keyof Policy] {
  switch (key) {
    case 'function':
    case 'command':
    case 'gpu':
      return allow(name, v)
    case 'network':
    case 'sandboxOwn':
      return boolean(name, v)
    case 'sandbox':
      return oneOf(name, v, ['auto', 'bwrap', 'none'] as const)
    case 'when':
      return oneOf(name, v, ['always', 'idle'] as const)
    case 'busyCpu':
      return fraction(name, v, true)
    case 'maxCpuShare':
      return fraction(name, v, false)
    case 'idleWindowMs':
      return durationMs(name, v, 1000)
    case 'graceMs':
      return durationMs(name, v, 0)
    case 'jobRetentionMs':
      return durationMs(name, v, 60_000)
    case 'hours': {
      if (typeof v !== 'string')
        throw new BadPolicyError(`${name} ${JSON.stringify(v)}: expected text like 19-07`)
      const text = v.trim() === 'always' ? '' : v.trim()
      parseHours(text)
      return text
    }
    case 'blobQuota':
      return sizeBytes(name, v)
    default:
      throw new BadPolicyError(`unknown policy key "${String(key)}" (known: ${POLICY_KEYS.join(', ')})`)
  }
}

/** Checks a whole policy object (from the file): unknown keys are errors; missing keys take defaults. */
export function validatePolicy(raw: unknown, where = POLICY_FILE): Policy {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new BadPolicyError(`${where} must hold a JSON object`)
  const out: Policy = { ...DEFAULT_POLICY }
  for (const [k, v] of Object.entries(raw)) {
    if (!(POLICY_KEYS as string[]).includes(k))
      throw new BadPolicyError(`${where}: unknown policy key "${k}" (known: ${POLICY_KEYS.join(', ')})`)
    try {
      ;(out as unknown as Record<string, unknown>)[k] = parseValue(k as keyof Policy, v)
    } catch (err) {
      throw new BadPolicyError(`${where}: ${(err as Error).message}`)
    }
  }
  return out
}

/** Key aliases people type (`max-cpu-share`, `grace`, `retention`). */
const ALIASES: Record<string, keyof Policy> = {
  'max-cpu-share': 'maxCpuShare',
  'sandbox-own': 'sandboxOwn',
  'busy-cpu': 'busyCpu',
  'idle-window': 'idleWindowMs',
  idleWindow: 'idleWindowMs',
  grace: 'graceMs',
  'blob-quota': 'blobQuota',
  retention: 'jobRetentionMs',
  jobRetention: 'jobRetentionMs',
  'job-retention': 'jobRetentionMs',
}

/** A key as `gridnode policy set` takes it: the README's names, their aliases, or policy.json's keys. */
export function policyKey(name: string): keyof Policy {
  const key = ALIASES[name] ?? name
  if (!(POLICY_KEYS as string[]).includes(key))
    throw new BadPolicyError(`unknown policy key "${name}" (known: ${Object.values(CLI_NAMES).join(', ')})`)
  return key as keyof Policy
}

export function policyPath(dataDir: string): string {
  return join(dataDir, POLICY_FILE)
}

/** The data dir's policy (defaults when there is no file). Throws BadPolicyError on a bad file. */
export function loadPolicy(dataDir: string): Policy {
  const path = policyPath(dataDir)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { ...DEFAULT_POLICY }
    throw new BadPolicyError(`cannot read ${path}: ${(err as Error).message}`)
  }
  let raw: unknown
  try {
    raw = JSON.parse(text)
  } catch (err) {
    throw new BadPolicyError(`${path} is not valid JSON: ${(err as Error).message}`)
  }
  return validatePolicy(raw, path)
}

/** Writes the policy atomically with mode 0600 (only keys that differ from the defaults, plus `sandbox` if set). */
export function savePolicy(dataDir: string, policy: Policy): void {
  const path = policyPath(dataDir)
  const tmp = `${path}.tmp-${process.pid}`
  writeFileSync(tmp, `${JSON.stringify(policy, null, 2)}\n`, { mode: 0o600 })
  chmodSync(tmp, 0o600)
  renameSync(tmp, path)
}

/** Sets one key (validated); returns the new policy, written to the file. */
export function setPolicyKey(dataDir: string, current: Policy, name: string, value: unknown): Policy {
  const key = policyKey(name)
  const next = { ...current, [key]: parseValue(key, value, name) } as Policy
  savePolicy(dataDir, next)
  return next
}
