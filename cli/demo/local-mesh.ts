/**
 * A throwaway mesh on this machine for `gridnode demo`: N real daemons as
 * child processes (bin/gridnode.js start), each with a temporary data dir,
 * listening on 127.0.0.1 only, mDNS off, in a private mesh of their own that
 * the first creates and the others join with one invitation from it, and started with --exit-with-parent so none outlives us.
 * stop() ends them and removes every directory.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { GridnodeError } from '../../src/errors.ts'

export interface LocalNode {
  name: string
  dataDir: string
  peerId: string
  addr: string
  proc: ChildProcess
}

export interface LocalMeshOptions {
  nodes: number
  cpusPerNode: number
  /** How long to wait for a daemon to be ready, and for membership (ms). */
  timeoutMs?: number
}

/** The checkout or installed package this file belongs to (walks up to gridnode's package.json). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  while (true) {
    const pkg = join(dir, 'package.json')
    if (existsSync(pkg) && JSON.parse(readFileSync(pkg, 'utf8')).name === 'gridnode') return dir
    const up = dirname(dir)
    if (up === dir)
      throw new GridnodeError('GN_NO_PACKAGE', 'cannot find the gridnode package around the CLI')
    dir = up
  }
}

export class LocalMesh {
  readonly root: string
  readonly mesh = `demo-${randomBytes(4).toString('hex')}`
  readonly nodes: LocalNode[] = []
  private readonly o: Required<LocalMeshOptions>
  private stopping?: Promise<void>

  constructor(o: LocalMeshOptions) {
    this.o = { timeoutMs: 30_000, ...o }
    this.root = mkdtempSync(join(tmpdir(), 'gridnode-demo-'))
  }

  /** Starts the first node, then the rest bootstrapped to it. */
  async start(): Promise<void> {
    const first = await this.startNode(1, [])
    const others = this.o.nodes - 1
    if (others === 0) return
    // The first node created the mesh; one invitation admits the rest.
    const { token } = await DaemonClient.open({ dataDir: first.dataDir }).request<{ token: string }>(
      'POST',
      '/v1/invites',
      { uses: others, expiresMs: 10 * 60_000 },
    )
    await Promise.all(Array.from({ length: others }, (_, i) => this.startNode(i + 2, [first.addr], token)))
  }

  /** Resolves once every node sees all the others in its peer table. */
  async waitForMembership(): Promise<void> {
    const deadline = Date.now() + this.o.timeoutMs
    const want = this.nodes.length - 1
    for (const n of this.nodes) {
      const client = DaemonClient.open({ dataDir: n.dataDir })
      while (true) {
        const peers = await client.request<unknown[]>('GET', '/v1/peers').catch(() => [])
        if (peers.length >= want) break
        if (Date.now() > deadline)
          throw new GridnodeError(
            'GN_DEMO_MESH',
            `${n.name} sees ${peers.length} of the ${want} other nodes after ${this.o.timeoutMs / 1000} s`,
          )
        await new Promise((r) => setTimeout(r, 100))
      }
    }
  }

  /** Ends every daemon (SIGTERM, then SIGKILL after 5 s) and removes the data dirs. Idempotent. */
  stop(): Promise<void> {
    this.stopping ??= (async () => {
      await Promise.all(this.nodes.map((n) => endProcess(n.proc)))
      rmSync(this.root, { recursive: true, force: true })
    })()
    return this.stopping
  }

  /** Synchronous last resort for process exit: kill -9 and remove the dirs. */
  killNow(): void {
    for (const n of this.nodes) if (n.proc.exitCode === null) n.proc.kill('SIGKILL')
    rmSync(this.root, { recursive: true, force: true })
  }

  private async startNode(i: number, bootstrap: string[], token?: string): Promise<LocalNode> {
    const name = `node-${i}`
    const dataDir = join(this.root, name)
    mkdirSync(dataDir, { recursive: true })
    const log = join(dataDir, 'daemon.log')
    const args = [join(packageRoot(), 'bin', 'gridnode.js'), 'start', '--json', '--exit-with-parent']
    args.push('--data-dir', dataDir, '--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0', '--api', '127.0.0.1:0')
    if (token) args.push('--join', token)
    else args.push('--mesh', this.mesh)
    args.push('--cpus', String(this.o.cpusPerNode), '--gpus', 'none')
    args.push('--log-level', 'warn', '--log-format', 'json')
    for (const b of bootstrap) args.push('--bootstrap', b)
    const proc = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', openSync(log, 'a')] })
    const ready = await readyLine(proc, name, log, this.o.timeoutMs)
    const addr = ready.addrs.find((a) => a.includes('/127.0.0.1/')) ?? ready.addrs[0]
    const node: LocalNode = { name, dataDir, peerId: ready.peerId, addr, proc }
    this.nodes.push(node)
    return node
  }
}

/** Waits for a daemon's `start --json` ready line; names its log's last lines when it fails. */
export function readyLine(
  proc: ChildProcess,
  name: string,
  log: string,
  timeoutMs: number,
): Promise<{ peerId: string; addrs: string[] }> {
  const tail = () => {
    const text = existsSync(log) ? readFileSync(log, 'utf8').trim().split('\n').slice(-3).join(' | ') : ''
    return text ? `; its log ends: ${text}` : ''
  }
  return new Promise((resolve, reject) => {
    let out = ''
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new GridnodeError('GN_DEMO_MESH', `${name} was not ready in ${timeoutMs / 1000} s${tail()}`))
    }, timeoutMs)
    proc.stdout!.on('data', (d: Buffer) => {
      out += d.toString()
      const nl = out.indexOf('\n')
      if (nl < 0) return
      clearTimeout(timer)
      try {
        resolve(JSON.parse(out.slice(0, nl)))
      } catch (err) {
        reject(err)
      }
    })
    proc.once('exit', (code) => {
      clearTimeout(timer)
      reject(
        new GridnodeError('GN_DEMO_MESH', `${name} exited with code ${code} before it was ready${tail()}`),
      )
    })
  })
}

async function endProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
  proc.kill('SIGTERM')
  const force = setTimeout(() => proc.kill('SIGKILL'), 5000)
  await exited
  clearTimeout(force)
}
