/**
 * Real daemons as child processes on loopback, for integration tests.
 * Each daemon watches its parent (--exit-with-parent), so a crashed test
 * runner leaves none behind; stopAll() ends them at the end of a file.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { readyLine } from '../../cli/demo/local-mesh.ts'
import { DaemonClient } from '../../src/client/daemon-client.ts'

export const REPO = fileURLToPath(new URL('../..', import.meta.url))
export const BIN = join(REPO, 'bin', 'gridnode.js')

export interface CliResult {
  code: number
  stdout: string
  stderr: string
}

export interface NodeOptions {
  /** Name of a new mesh this node founds (a second founder in the same TestMesh makes a separate mesh). */
  mesh?: string
  /**
   * A join token. TestMesh.add fills it from the mesh's founder (the first node added) unless this
   * is `false` (found a new mesh) or `mesh` is given.
   */
  join?: string | false
  bootstrap?: string[]
  cpus?: number
  gpus?: string
  env?: Record<string, string>
  extraArgs?: string[]
  /** The `gridnode` entry to run (default: the checkout's bin/gridnode.js, on the TypeScript sources). */
  bin?: string
  /** Written to the data dir's config.json before the first start (settings that have no flag). */
  config?: Record<string, unknown>
}

export interface ReadyLine {
  peerId: string
  addrs: string[]
  api: string
}

export class TestNode {
  readonly name: string
  readonly dataDir: string
  readonly opts: NodeOptions
  proc?: ChildProcess
  ready?: ReadyLine

  constructor(name: string, dataDir: string, opts: NodeOptions) {
    this.name = name
    this.dataDir = dataDir
    this.opts = opts
  }

  get peerId(): string {
    return this.ready!.peerId
  }

  /** The loopback TCP address, with /p2p/<peerId>, for others to bootstrap from. */
  get addr(): string {
    return this.ready!.addrs.find((a) => a.includes('/127.0.0.1/'))!
  }

  async start(): Promise<ReadyLine> {
    const o = this.opts
    const args = [
      o.bin ?? BIN,
      'start',
      '--json',
      '--exit-with-parent',
      '--data-dir',
      this.dataDir,
      '--no-mdns',
    ]
    args.push('--listen', '/ip4/127.0.0.1/tcp/0', '--log-format', 'json', '--log-level', 'debug')
    if (o.mesh) args.push('--mesh', o.mesh)
    if (o.join) args.push('--join', o.join)
    for (const b of o.bootstrap ?? []) args.push('--bootstrap', b)
    if (o.cpus) args.push('--cpus', String(o.cpus))
    args.push('--gpus', o.gpus ?? 'none')
    args.push(...(o.extraArgs ?? []))
    // GRIDNODE_TEST_NODE_ARGS: extra flags for the daemons' node (e.g. --cpu-prof when profiling a bench).
    const nodeArgs = process.env.GRIDNODE_TEST_NODE_ARGS?.split(' ').filter(Boolean) ?? []
    const proc = spawn(process.execPath, [...nodeArgs, ...args], {
      env: { ...process.env, GRIDNODE_FROM_SOURCE: '1', ...o.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    this.proc = proc
    proc.stderr!.pipe(createWriteStream(join(this.dataDir, 'daemon.log'), { flags: 'a' }))
    this.ready = (await readyLine(proc, this.name, join(this.dataDir, 'daemon.log'), 20_000)) as ReadyLine
    return this.ready
  }

  /** kill -9: no goodbye to anyone. */
  async kill9(): Promise<void> {
    await this.signal('SIGKILL')
  }

  async stop(): Promise<void> {
    await this.signal('SIGTERM')
  }

  private async signal(sig: NodeJS.Signals): Promise<void> {
    const proc = this.proc
    if (!proc || proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill(sig)
    await exited
  }

  /** Asks the daemon's control API directly (cheap enough to poll, unlike spawning the CLI). */
  api<T>(path: string, method = 'GET', body?: unknown): Promise<T> {
    return DaemonClient.open({ dataDir: this.dataDir }).request<T>(method, path, body)
  }

  cli(args: string[], input?: string): Promise<CliResult> {
    return runCli([...args, '--data-dir', this.dataDir], input)
  }
}

export function runCli(args: string[], input?: string, env: Record<string, string> = {}): Promise<CliResult> {
  return runProcess(process.execPath, [BIN, ...args], { input, env: { GRIDNODE_FROM_SOURCE: '1', ...env } })
}

/** Runs a program to its end and collects its output; `env` is added to this process's. */
export function runProcess(
  command: string,
  args: string[],
  opts: { input?: string; env?: Record<string, string>; cwd?: string } = {},
): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const proc = spawn(command, args, {
      cwd: opts.cwd,
      env: { ...process.env, ...opts.env },
      stdio: ['pipe', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
    })
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    proc.on('error', reject)
    proc.on('close', (code) => resolve({ code: code ?? -1, stdout, stderr }))
    proc.stdin.end(opts.input ?? '')
  })
}

export class TestMesh {
  readonly root: string
  readonly nodes: TestNode[] = []

  constructor(label: string) {
    const base = join(tmpdir(), 'gridnode-test')
    mkdirSync(base, { recursive: true })
    this.root = mkdtempSync(join(base, `${label}-`))
  }

  /** The first node added: it created the mesh, holds its key and invites the others. */
  get founder(): TestNode | undefined {
    return this.nodes[0]
  }

  /** A join token from the founder (its control API, as `gridnode invite --json` asks it). */
  async invite(uses = 1, expiresMs?: number): Promise<string> {
    const founder = this.founder
    if (!founder) throw new Error('no founder yet: add a node first')
    const inv = await founder.api<{ token: string }>('/v1/invites', 'POST', { uses, expiresMs })
    return inv.token
  }

  /** Starts a node: the first founds the mesh, later ones join it with an invitation from the founder. */
  async add(name: string, opts: NodeOptions = {}): Promise<TestNode> {
    const dir = join(this.root, name)
    mkdirSync(dir, { recursive: true })
    if (opts.join === undefined && opts.mesh === undefined && this.founder) {
      opts = { ...opts, join: await this.invite() }
    }
    if (opts.config !== undefined) writeFileSync(join(dir, 'config.json'), JSON.stringify(opts.config))
    const node = new TestNode(name, dir, opts)
    this.nodes.push(node)
    await node.start()
    return node
  }

  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map((n) => n.kill9()))
    if (!process.env.GRIDNODE_KEEP_TEST_DIRS) rmSync(this.root, { recursive: true, force: true })
  }
}

/** Polls `check` until it returns a truthy value or the time runs out; the last error is kept for the message. */
export async function eventually<T>(
  what: string,
  check: () => Promise<T | undefined | false>,
  timeoutMs = 15_000,
  everyMs = 200,
): Promise<T> {
  const deadline = Date.now() + timeoutMs
  let last: unknown
  while (Date.now() < deadline) {
    try {
      const v = await check()
      if (v) return v
    } catch (err) {
      last = err
    }
    await new Promise((r) => setTimeout(r, everyMs))
  }
  throw new Error(
    `timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`,
  )
}
