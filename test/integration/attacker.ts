/**
 * A hostile peer for integration tests, as a real separate process
 * (fixtures/hostile-member.ts) driven over JSON lines on stdin/stdout.
 *
 * - `Attacker.member(mesh, dir)`: redeems a real invitation from the mesh's
 *   founder and proves membership like any member, then misbehaves on command.
 * - `Attacker.keyOnly(swarmKeyFile, mesh)`: holds the swarm key, no certificate.
 * - `Attacker.stranger(mesh)`: no key at all.
 *
 * The process exits when its stdin closes (the test runner went away) or its
 * parent dies; `stop()` kills it at once.
 */
import { type ChildProcess, spawn } from 'node:child_process'
import { createWriteStream, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { createInterface } from 'node:readline'
import type { Batch, HeldKey, TaskResult } from '../../src/scheduler/types.ts'
import { REPO, type TestMesh } from './harness.ts'

const FIXTURE = join(REPO, 'test', 'integration', 'fixtures', 'hostile-member.ts')

/** How a request went: a decoded reply, a stream that closed or reset instead, or no stream at all. */
export interface RpcOutcome<R = WireReply> {
  reply?: R
  closed?: string
  status?: string
  refused?: string
}

export interface WireReply {
  t: string
  code?: string
  message?: string
  accepted?: number
  tasks?: Array<{ job: string; index: number; attempt: number }>
  drop?: Array<{ job: string; index: number; attempt: number }>
  batch?: Batch
  [k: string]: unknown
}

export interface FloodStream {
  sent: number
  replies: number
  granted: number
  tasks: number
  errors: Record<string, number>
  closed: string
}

export interface BlobStats {
  requests: number
  hashes: string[]
  bytesSent: number
  errors: string[]
}

export interface Received {
  results: TaskResult[]
  leases: HeldKey[]
  steals: number
  pushes: number
}

function revive(_key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>
    if (Object.keys(o).length === 1 && typeof o.$hex === 'string')
      return new Uint8Array(Buffer.from(o.$hex, 'hex'))
  }
  return value
}

function replace(_key: string, value: unknown): unknown {
  if (value instanceof Uint8Array) return { $hex: Buffer.from(value).toString('hex') }
  return value
}

export class Attacker {
  readonly peerId: string
  readonly addrs: string[]
  readonly mesh: string
  private readonly proc: ChildProcess
  private readonly pending = new Map<number, { resolve(v: unknown): void; reject(e: Error): void }>()
  private nextId = 1
  private exited?: string

  private constructor(proc: ChildProcess, ready: { peerId: string; addrs: string[]; mesh: string }) {
    this.proc = proc
    this.peerId = ready.peerId
    this.addrs = ready.addrs
    this.mesh = ready.mesh
  }

  /** A member of `mesh` by a real invitation from its founder. `dir` is its data dir (created). */
  static async member(mesh: TestMesh, name = 'hostile'): Promise<Attacker> {
    const dataDir = join(mesh.root, name)
    const token = await mesh.invite()
    return Attacker.spawn({ mode: 'member', token, dataDir }, dataDir)
  }

  /** Holds the swarm key (say a leaked one) but no membership certificate. */
  static keyOnly(swarmKeyFile: string, meshName: string, logDir: string): Promise<Attacker> {
    return Attacker.spawn({ mode: 'key-only', swarmKeyFile, mesh: meshName }, logDir)
  }

  /** Neither key nor certificate. */
  static stranger(meshName: string, logDir: string): Promise<Attacker> {
    return Attacker.spawn({ mode: 'none', mesh: meshName }, logDir)
  }

  private static spawn(config: Record<string, unknown>, logDir: string): Promise<Attacker> {
    mkdirSync(logDir, { recursive: true })
    const proc = spawn(process.execPath, [FIXTURE, JSON.stringify(config)], {
      stdio: ['pipe', 'pipe', 'pipe'],
      env: { ...process.env, GRIDNODE_FROM_SOURCE: '1' },
    })
    const logPath = join(logDir, 'hostile.log')
    proc.stderr!.pipe(createWriteStream(logPath, { flags: 'a' }))
    const lines = createInterface({ input: proc.stdout! })
    return new Promise<Attacker>((resolve, reject) => {
      let attacker: Attacker | undefined
      const timer = setTimeout(() => {
        proc.kill('SIGKILL')
        reject(new Error(`hostile member not ready within 30 s (log: ${logPath})`))
      }, 30_000)
      proc.once('exit', (code, signal) => {
        clearTimeout(timer)
        const why = `hostile member exited (code ${code}, signal ${signal}; log: ${logPath})`
        if (attacker === undefined) reject(new Error(why))
        else attacker.gone(why)
      })
      lines.on('line', (line) => {
        let msg: { ready?: boolean; id?: number; ok?: boolean; result?: unknown; error?: string }
        try {
          msg = JSON.parse(line, revive)
        } catch {
          return
        }
        if (msg.ready && attacker === undefined) {
          clearTimeout(timer)
          attacker = new Attacker(proc, msg as unknown as { peerId: string; addrs: string[]; mesh: string })
          resolve(attacker)
          return
        }
        const p = msg.id === undefined ? undefined : attacker?.pending.get(msg.id)
        if (p === undefined || msg.id === undefined) return
        attacker?.pending.delete(msg.id)
        if (msg.ok) p.resolve(msg.result)
        else p.reject(new Error(msg.error ?? 'hostile member: unknown error'))
      })
    })
  }

  private gone(why: string): void {
    this.exited = why
    for (const p of this.pending.values()) p.reject(new Error(why))
    this.pending.clear()
  }

  /** Sends one command and waits for its answer. */
  call<T>(op: string, args: Record<string, unknown> = {}): Promise<T> {
    if (this.exited) return Promise.reject(new Error(this.exited))
    const id = this.nextId++
    return new Promise<T>((resolve, reject) => {
      this.pending.set(id, { resolve: resolve as (v: unknown) => void, reject })
      this.proc.stdin!.write(`${JSON.stringify({ id, op, ...args }, replace)}\n`)
    })
  }

  /** Connects to a daemon; `member` says whether the membership handshake completed. */
  dial(addr: string): Promise<{ connected: boolean; member: boolean }> {
    return this.call('dial', { addr })
  }

  push(peer: string, batch: unknown): Promise<RpcOutcome> {
    return this.call('push', { peer, batch })
  }

  steal(peer: string, max: number, free = { cpu: 8, gpu: 0, memoryMB: 0 }): Promise<RpcOutcome> {
    return this.call('steal', { peer, free, max })
  }

  results(peer: string, results: unknown[]): Promise<RpcOutcome> {
    return this.call('results', { peer, results })
  }

  lease(peer: string, holdings: unknown[]): Promise<RpcOutcome> {
    return this.call('lease', { peer, holdings })
  }

  /** Any message on one of `steal`, `result`, `lease`, `blob` (or a protocol id), as raw CBOR. */
  rpc(peer: string, protocol: string, msg: Record<string, unknown>): Promise<RpcOutcome> {
    return this.call('rpc', { peer, protocol, msg })
  }

  /** Raw bytes on a fresh stream to `peer` (a peer ID or a multiaddr). */
  raw(
    peer: string,
    protocol: string,
    bytes: Uint8Array,
    waitMs = 1500,
  ): Promise<{ how?: string; status?: string; reply?: string; refused?: string }> {
    return this.call('raw', { peer, protocol, bytes, waitMs })
  }

  /** `n` steal requests pipelined on each of `streams` streams. */
  stealFlood(
    peer: string,
    n: number,
    streams = 1,
    msg?: Record<string, unknown>,
  ): Promise<{ ms: number; streams: FloodStream[] }> {
    return this.call('steal-flood', { peer, n, streams, msg })
  }

  /** The batch this process grants to the next steal it is asked for. */
  plantBatch(batch: unknown): Promise<unknown> {
    return this.call('plant-batch', { batch })
  }

  /** How blob fetches made of this process are answered. */
  blobMode(mode: {
    kind: 'honest-miss' | 'header'
    size?: number
    chunks?: number
    holdMs?: number
  }): Promise<unknown> {
    return this.call('blob-mode', { mode })
  }

  blobStats(): Promise<BlobStats> {
    return this.call('blob-stats')
  }

  /** Results and leases daemons sent this process (it owns the jobs it pushed). */
  received(): Promise<Received> {
    return this.call('received')
  }

  subscribe(topic: string): Promise<unknown> {
    return this.call('subscribe', { topic })
  }

  subscribers(topic: string): Promise<string[]> {
    return this.call('subscribers', { topic })
  }

  publish(topic: string, data: Uint8Array): Promise<{ published: boolean; error?: string }> {
    return this.call('publish', { topic, data })
  }

  get pid(): number | undefined {
    return this.proc.pid
  }

  async stop(): Promise<void> {
    const proc = this.proc
    if (proc.exitCode !== null || proc.signalCode !== null) return
    const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()))
    proc.kill('SIGKILL')
    await exited
  }
}
