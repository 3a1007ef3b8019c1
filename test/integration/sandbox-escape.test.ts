/**
 * Escape suite: real daemons on loopback, tasks submitted on one node and run
 * sandboxed on another (`--sandbox bwrap`). The tasks need 2 CPU slots and the
 * owner has 1, so only the worker can run them. Every attempt must fail with a
 * clear per-task error or have no effect, within the task's deadline plus one
 * second (measured by the worker, as it reports), and the worker daemon must
 * carry on. Skipped where bubblewrap does not work (the probe says why).
 */
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Grid } from '../../src/client/index.ts'
import type { TaskResultOf } from '../../src/client/job.ts'
import { probeSandbox } from '../../src/executor/sandbox/probe.ts'
import { eventually, TestMesh, type TestNode } from './harness.ts'

const ESCAPE = fileURLToPath(new URL('./fixtures/escape.ts', import.meta.url))
const ON_WORKER = { cpu: 2, maxAttempts: 1 } as const

const probeDir = await mkdtemp(join(tmpdir(), 'gridnode-escape-probe-'))
const probe = await probeSandbox('bwrap', { baseDir: join(probeDir, 'sandbox') })
await probe.host?.close()
await rm(probeDir, { recursive: true, force: true })
if (!probe.status.available) console.warn(`sandbox escape suite skipped: ${probe.status.reason}`)

interface Outcome {
  value?: unknown
  error?: string
  ranOn?: string
  durationMs?: number
}

describe.skipIf(!probe.status.available)('sandbox escape suite', () => {
  const mesh = new TestMesh('escape')
  let owner: TestNode
  let worker: TestNode
  let grid: Grid
  let workerPid: number
  let apiPort: number

  beforeAll(async () => {
    owner = await mesh.add('owner', { cpus: 1 })
    worker = await mesh.add('worker', { cpus: 4, bootstrap: [owner.addr], extraArgs: ['--sandbox', 'bwrap'] })
    await eventually(
      'the owner to see the worker',
      async () => (await owner.api<unknown[]>('/v1/peers')).length >= 1,
    )
    const status = await worker.api<{ pid: number; sandbox: { available: boolean } }>('/v1/status')
    expect(status.sandbox.available).toBe(true)
    workerPid = status.pid
    apiPort = Number(new URL(worker.ready!.api).port)
    grid = await connect({ dataDir: owner.dataDir })
  }, 60_000)
  afterAll(async () => {
    await mesh.stopAll()
  })

  async function outcomes(job: AsyncIterable<TaskResultOf<unknown>>): Promise<Outcome[]> {
    const out: Outcome[] = []
    for await (const r of job) {
      out[r.index] = {
        value: r.value,
        error: r.error?.reason,
        ranOn: r.ranOn,
        durationMs: r.durationMs,
      }
    }
    return out
  }

  const fn = (name: string, inputs: unknown[], opts: Record<string, number> = {}) =>
    outcomes(grid.map(ESCAPE, name, inputs, { ...ON_WORKER, ...opts }))
  const cmd = (argv: string[], inputs: string[], opts: Record<string, number> = {}) =>
    outcomes(grid.run(argv, inputs, { ...ON_WORKER, ...opts }))

  async function workerAlive(): Promise<void> {
    const s = await worker.api<{ pid: number }>('/v1/status')
    expect(s.pid).toBe(workerPid)
    const again = await fn('square', [7])
    expect(again[0].value).toBe(49)
    expect(again[0].ranOn).toBe(worker.peerId)
  }

  it('ran on the worker: the owner cannot run 2-slot tasks', async () => {
    const r = await fn('square', [1, 2, 3])
    expect(r.map((o) => o.value)).toEqual([1, 4, 9])
    expect(new Set(r.map((o) => o.ranOn))).toEqual(new Set([worker.peerId]))
  }, 30_000)

  it("cannot read the host's identity.key, api.token or swarm.key, nor list a data dir", async () => {
    const files = ['identity.key', 'api.token', 'swarm.key'].map((f) => join(worker.dataDir, f))
    const reads = await fn('read', files)
    for (const r of reads) expect(r.value).toMatch(/^error:/)
    const lists = await fn('list', [worker.dataDir, owner.dataDir, mesh.root, '/root', '/home'])
    for (const r of lists) expect(r.value).toMatch(/^error:/)
    const cmds = await cmd(['cat', '{}'], files)
    for (const r of cmds) expect(r.error).toMatch(/command exited with code 1[\s\S]*No such file/)
    const ls = await cmd(['ls', '{}'], [worker.dataDir])
    expect(ls[0].error).toMatch(/command exited with code 2/)
  }, 60_000)

  it('cannot read /etc/shadow (the daemon runs as root: tasks run as a user of their own)', async () => {
    const r = await fn('read', ['/etc/shadow'])
    expect(r[0].value).toMatch(/^error:/)
    const c = await cmd(['cat', '{}'], ['/etc/shadow'])
    expect(c[0].error).toMatch(/Permission denied/)
  }, 30_000)

  it("cannot read another task's scratch dir", async () => {
    const keeping = fn('keepSecret', [3000])
    await new Promise((r) => setTimeout(r, 1000))
    const sandboxes = join(worker.dataDir, 'sandbox')
    const peek = await fn('list', [sandboxes, '/work'])
    expect(peek[0].value).toMatch(/^error:/)
    expect(peek[1].value).not.toContain('secret.txt')
    const c = await cmd(['sh', '-c', 'ls -a /work; find / -name secret.txt 2>/dev/null; true'], ['x'])
    expect(c[0].error).toBeUndefined()
    expect((c[0].value as { stdout: string }).stdout).not.toContain('secret.txt')
    expect((await keeping)[0].value).toBe('the secret')
  }, 30_000)

  it('cannot write outside its scratch dir', async () => {
    const targets = [
      '/etc/escaped',
      '/usr/escaped',
      '/tmp/escaped',
      join(worker.dataDir, 'escaped'),
      '/escaped',
    ]
    for (const r of await fn('write', targets)) expect(r.value).toMatch(/^error:/)
    const c = await cmd(
      ['sh', '-c', 'echo x > {}'],
      targets.filter((t) => t !== '/tmp/escaped'),
    )
    for (const r of c) expect(r.error).toMatch(/command exited with code/)
    expect((await fn('write', ['/work/fine.txt']))[0].value).toBe('written')
  }, 60_000)

  it("cannot open a TCP connection: not to the daemon's API port, not anywhere on loopback", async () => {
    const targets = [
      { host: '127.0.0.1', port: apiPort },
      { host: '127.0.0.1', port: Number(worker.addr.split('/tcp/')[1].split('/')[0]) },
    ]
    for (const r of await fn('tcp', targets)) expect(r.value).toMatch(/^error:(ECONNREFUSED|ENETUNREACH)/)
    const c = await cmd(['bash', '-c', 'exec 3<>/dev/tcp/127.0.0.1/{} && echo connected'], [String(apiPort)])
    expect(c[0].error).toMatch(/command exited with code 1/)
  }, 30_000)

  it('leaves no process running after the task ends', async () => {
    const c = await cmd(
      ['sh', '-c', 'setsid sleep 4321 >/dev/null 2>&1 & nohup sleep 4322 >/dev/null 2>&1 & echo started'],
      ['x'],
    )
    expect((c[0].value as { stdout: string }).stdout.trim()).toBe('started')
    const f = await fn('spawnChild', [null])
    expect(f[0].value).toMatch(/^error:ERR_ACCESS_DENIED/)
    await new Promise((r) => setTimeout(r, 500))
    const ps = execFileSync('ps', ['-eo', 'args'], { encoding: 'utf8' })
    expect(ps).not.toMatch(/sleep 432[12]/)
  }, 30_000)

  it('a fork bomb is bounded, ends within its deadline plus a second, and the daemon carries on', async () => {
    const c = await cmd(['bash', '-c', 'f() { f | f & }; f; sleep 100'], ['x'], { timeoutMs: 3000 })
    expect(c[0].error).toBeDefined()
    expect(c[0].durationMs).toBeLessThan(4000)
    await workerAlive()
  }, 60_000)

  it('cannot allocate 10 GB', async () => {
    const f = await fn('alloc', [10 * 1024 ** 3])
    expect(f[0].error ?? f[0].value).toMatch(/error|memory|allocation/i)
    const c = await cmd(
      // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell expansion, not a template
      ['bash', '-c', 'x=$(head -c {} /dev/zero | tr "\\0" a); echo ${#x}'],
      ['10000000000'],
      {
        memoryMB: 256,
        timeoutMs: 20_000,
      },
    )
    expect(c[0].error).toBeDefined()
    await workerAlive()
  }, 60_000)

  it('cannot loop past its time limit, nor defeat it', async () => {
    const loops = await fn('forever', [0], { timeoutMs: 1000 })
    expect(loops[0].error).toMatch(/timed out after 1000 ms/)
    expect(loops[0].durationMs).toBeLessThan(2000)
    const defeat = await fn('defeatTimeout', [0], { timeoutMs: 1000 })
    expect(defeat[0].error).toMatch(/timed out after 1000 ms/)
    expect(defeat[0].durationMs).toBeLessThan(2000)
    const c = await cmd(['sh', '-c', "trap '' TERM INT HUP; while :; do :; done"], ['x'], { timeoutMs: 1000 })
    expect(c[0].error).toMatch(/timed out after 1000 ms/)
    expect(c[0].durationMs).toBeLessThan(2000)
    await workerAlive()
  }, 60_000)

  it('cannot signal the daemon', async () => {
    const f = await fn('signal', [workerPid, 1])
    expect(f[0].value).toMatch(/^error:(ESRCH|EPERM)/)
    expect(f[1].value).toMatch(/^error:(ESRCH|EPERM)/)
    const c = await cmd(['kill', '-9', '{}'], [String(workerPid)])
    expect(c[0].error).toMatch(/command exited with code 1/)
    await workerAlive()
  }, 30_000)

  it("cannot forge another task's result through the worker's result channel", async () => {
    const other = fn(
      'square',
      Array.from({ length: 20 }, (_, i) => i),
    )
    const forged = await fn('forge', [100])
    expect(forged[0].error).toMatch(/broke its result protocol/)
    expect((await other).map((o) => o.value)).toEqual(Array.from({ length: 20 }, (_, i) => i * i))
    await workerAlive()
  }, 30_000)
})
