/**
 * The sandboxed executor: the shared suite with every job from another node
 * (so every task runs in bubblewrap), then what only a sandbox does.
 * Skipped where bubblewrap does not work (the probe says why).
 */
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BlobStore } from '../../src/executor/blob-store.ts'
import { bundleModule } from '../../src/executor/bundle.ts'
import { createLocalExecutor, type Executor } from '../../src/executor/executor.ts'
import { probeSandbox } from '../../src/executor/sandbox/probe.ts'
import type { JobSpec, WorkSpec } from '../../src/scheduler/types.ts'
import { executorSuite, makeJob, makeTask, okValue, sandboxHere } from './suite.ts'

const SELF = 'me'
const BASIC = new URL('./fixtures/basic.ts', import.meta.url)
const CRASHY = new URL('./fixtures/crashy.ts', import.meta.url)
const PROBING = new URL('./fixtures/probing.ts', import.meta.url)
const isRoot = process.getuid?.() === 0

const sandbox = await sandboxHere()
const canSandbox = sandbox.available
if (!canSandbox) console.warn(`sandboxed executor tests skipped: ${sandbox.reason}`)

interface Setup {
  executor: Executor
  dataDir: string
  hashes: Record<string, string>
  close(): Promise<void>
}

async function setup(slots: number, over: { own?: boolean; idleMs?: number } = {}): Promise<Setup> {
  const dataDir = await mkdtemp(join(tmpdir(), 'gridnode-sandbox-'))
  const blobs = await BlobStore.open(dataDir)
  const hashes: Record<string, string> = {}
  for (const [name, url] of Object.entries({ basic: BASIC, crashy: CRASHY, probing: PROBING })) {
    const b = await bundleModule(url)
    await blobs.put(b.bytes)
    hashes[name] = b.hash
  }
  const probed = await probeSandbox('bwrap', { baseDir: join(dataDir, 'sandbox') })
  const executor = createLocalExecutor({
    dataDir,
    slots,
    blobs,
    self: SELF,
    fetchBlob: async (h) => {
      throw new Error(`no peer has blob ${h.slice(0, 12)}`)
    },
    sandbox: { status: probed.status, host: probed.host, own: over.own, pool: { idleMs: over.idleMs } },
  })
  return {
    executor,
    dataDir,
    hashes,
    close: async () => {
      await executor.close()
      await rm(dataDir, { recursive: true, force: true })
    },
  }
}

describe.skipIf(!canSandbox)('sandboxed executor', () => {
  executorSuite('sandboxed executor (foreign jobs)', async (slots) => {
    const s = await setup(slots)
    return { executor: s.executor, basic: s.hashes.basic, close: s.close }
  })

  let s: Setup
  const fn = (bundle: string, exportName: string): WorkSpec => ({
    kind: 'function',
    bundle: s.hashes[bundle],
    exportName,
  })
  const run = (job: JobSpec, index: number, input: unknown) =>
    s.executor.run(job, makeTask(job, index, input), { gpus: [] })

  beforeAll(async () => {
    s = await setup(2)
  })
  afterAll(async () => {
    await s?.close()
  })

  test('a function task sees /work as its cwd, no data dir, no /etc/shadow, no network', async () => {
    const job = makeJob(fn('probing', 'whoami'))
    const me = okValue(await run(job, 0, null)) as { uid: number; cwd: string }
    expect(me.cwd).toBe('/work')
    if (isRoot) expect(me.uid).toBeGreaterThanOrEqual(2_000_000_000)
    const read = makeJob(fn('probing', 'read'))
    expect(okValue(await run(read, 0, '/etc/shadow'))).toMatch(/^error:/)
    expect(okValue(await run(read, 1, join(s.dataDir, 'blobs')))).toMatch(/^error:/)
    const list = makeJob(fn('probing', 'list'))
    expect(okValue(await run(list, 0, s.dataDir))).toMatch(/^error:/)
    expect(okValue(await run(list, 1, '/root'))).toMatch(/^error:/)
    const write = makeJob(fn('probing', 'write'))
    expect(okValue(await run(write, 0, '/work/ok.txt'))).toBe('written')
    expect(okValue(await run(write, 1, '/tmp/x'))).toMatch(/^error:/)
    expect(okValue(await run(write, 2, join(s.dataDir, 'x')))).toMatch(/^error:/)
    const tcp = makeJob(fn('probing', 'tcp'))
    expect(okValue(await run(tcp, 0, { host: '127.0.0.1', port: 22 }))).toMatch(/^error:/)
    const env = makeJob(fn('probing', 'env'))
    const seen = okValue(await run(env, 0, null)) as Record<string, string>
    expect(Object.keys(seen).sort()).toEqual(['HOME', 'LANG', 'PATH', 'PWD', 'TMPDIR'])
  })

  test('tasks of two jobs never share a worker process', async () => {
    const a = makeJob(fn('probing', 'mark'))
    const b = makeJob(fn('probing', 'mark'))
    const first = await Promise.all([0, 1, 2, 3].map((i) => run(a, i, 'A')))
    expect(first.map(okValue)).toContain('A')
    const second = await Promise.all([0, 1, 2, 3].map((i) => run(b, i, 'B')))
    expect(second.map(okValue)).not.toContain('A')
  })

  test('process.exit, running out of memory and an uncaught error end crashed; the executor goes on', async () => {
    const exit = makeJob(fn('crashy', 'exit'))
    expect(await run(exit, 0, 3)).toMatchObject({ status: 'crashed', error: 'worker exited with code 3' })
    const hog = makeJob(fn('crashy', 'hog'), { resources: { cpu: 1, gpu: 0, memoryMB: 64 } })
    expect(await run(hog, 0, 0)).toMatchObject({
      status: 'crashed',
      error: 'worker ran out of memory (limit 64 MB)',
    })
    const alloc = makeJob(fn('probing', 'alloc'), { resources: { cpu: 1, gpu: 0, memoryMB: 256 } })
    const big = await run(alloc, 0, 10 * 1024 ** 3)
    expect(['threw', 'crashed']).toContain(big.status)
    const echo = makeJob(fn('basic', 'echo'))
    expect(okValue(await run(echo, 0, 'still here'))).toBe('still here')
  })

  test('a task writing forged results to fd 3 gets its own worker stopped, nothing else', async () => {
    const forge = makeJob(fn('probing', 'forge'))
    const other = makeJob(fn('basic', 'sleep'))
    const running = run(other, 0, 300)
    const forged = await run(forge, 0, 50)
    expect(forged.status).toBe('crashed')
    expect((forged as { error: string }).error).toContain('broke its result protocol')
    expect(okValue(await running)).toBe(300)
  })

  test('a task writing a revoked frame nobody asked for gets its own worker stopped', async () => {
    const forge = makeJob(fn('probing', 'forgeRevoked'))
    const forged = await run(forge, 0, 3)
    expect(forged.status).toBe('crashed')
    expect((forged as { error: string }).error).toContain('a revoked frame nobody asked for')
  })

  test("a quick task queued behind a long one is taken back for the job's idle worker", async () => {
    const job = makeJob(fn('basic', 'sleep'))
    // Both slots' workers bound to the job; a 3 ms function, so each holds two.
    for (let round = 0; round < 6; round++) await Promise.all([0, 1].map((i) => run(job, i, 3)))
    const t0 = performance.now()
    const long = run(job, 10, 600)
    const behind = run(job, 11, 1).then(() => performance.now() - t0)
    const others = [run(job, 12, 1), run(job, 13, 1)]
    // Before: 'behind' waited out the long task on its worker (~600 ms).
    expect(await behind).toBeLessThan(400)
    expect((await Promise.all([long, ...others])).map(okValue)).toEqual([600, 1, 1])
  })

  test('tasks taken back and forth between sandboxed workers all end ok, each once', async () => {
    const job = makeJob(fn('basic', 'echo'))
    const sleepy = makeJob(fn('basic', 'sleep'))
    for (let round = 0; round < 4; round++) await Promise.all([0, 1].map((i) => run(sleepy, i, 3)))
    const durations = [0, 1, 3, 8, 20, 1, 0, 40]
    const all = Array.from({ length: 80 }, (_, i) =>
      run(sleepy, 100 + i, durations[(i * 5) % durations.length]),
    )
    const outcomes = await Promise.all(all)
    expect(outcomes.map((o) => o.status).filter((st) => st !== 'ok')).toEqual([])
    expect(okValue(await run(job, 0, 'after'))).toBe('after')
  })

  test('a timeout kills the whole worker within the deadline plus a second', async () => {
    const job = makeJob(fn('crashy', 'forever'), { timeoutMs: 300 })
    const t0 = performance.now()
    expect(await run(job, 0, 0)).toMatchObject({ status: 'timeout' })
    expect(performance.now() - t0).toBeLessThan(1300)
  })

  test('suspend stops a task and its clock; resume continues it; evict ends it returned', async () => {
    const ex = s.executor
    const job = makeJob(fn('probing', 'cpu'), { timeoutMs: 2500 })
    const task = makeTask(job, 0, 300)
    const t0 = performance.now()
    const pending = ex.run(job, task, { gpus: [] })
    await new Promise((r) => setTimeout(r, 300))
    expect(ex.suspend?.(task)).toBe(true)
    await new Promise((r) => setTimeout(r, 2500))
    expect(ex.resume?.(task)).toBe(true)
    const outcome = await pending
    expect(outcome.status).toBe('ok')
    expect(performance.now() - t0).toBeGreaterThan(2700)

    const sleeper = makeJob(fn('basic', 'sleep'))
    const t = makeTask(sleeper, 0, 5000)
    const p = ex.run(sleeper, t, { gpus: [] })
    await new Promise((r) => setTimeout(r, 200))
    expect(ex.signalForeign?.('SIGSTOP')).toBe(1)
    expect(ex.evict?.(t, 'the machine’s user is back')).toBe(true)
    expect(await p).toMatchObject({ status: 'returned', error: 'the machine’s user is back' })
  })

  test('commands run sandboxed: their own uid, /work, a scrubbed env, no shadow, no network', async () => {
    const cmd = (argv: string[], over: Partial<JobSpec> = {}) =>
      makeJob({ kind: 'command', argv, env: { MINE: '1' }, stdoutMaxBytes: 10_000 }, over)
    const out = (o: Awaited<ReturnType<typeof run>>) => (okValue(o) as { stdout: string }).stdout.trim()
    expect(out(await run(cmd(['pwd']), 0, undefined))).toBe('/work')
    if (isRoot) expect(Number(out(await run(cmd(['id', '-u']), 0, undefined)))).toBeGreaterThanOrEqual(2e9)
    const env = out(await run(cmd(['env']), 0, undefined))
      .split('\n')
      .sort()
    expect(env.map((l) => l.split('=')[0])).toEqual(['HOME', 'LANG', 'MINE', 'PATH', 'PWD', 'TMPDIR'])
    expect((await run(cmd(['cat', '/etc/shadow']), 0, undefined)).status).toBe('threw')
    expect((await run(cmd(['ls', s.dataDir]), 0, undefined)).status).toBe('threw')
    const net = await run(cmd(['sh', '-c', 'exec 3<>/dev/tcp/127.0.0.1/22 && echo open']), 0, undefined)
    expect(net.status).toBe('threw')
    expect(await run(cmd(['no-such-command-here']), 0, undefined)).toMatchObject({
      status: 'rejected',
      error: expect.stringContaining('command not found: no-such-command-here'),
    })
    const t0 = performance.now()
    const slow = await run(cmd(['sh', '-c', 'sleep 100 & sleep 100'], { timeoutMs: 300 }), 0, undefined)
    expect(slow.status).toBe('timeout')
    expect(performance.now() - t0).toBeLessThan(1300)
  })

  const hasPython = spawnSync('python3', ['-c', '0']).status === 0
  test.skipIf(!hasPython || !['x64', 'arm64'].includes(process.arch))(
    "a command cannot use the kernel's keyrings (they outlive it, and sandbox uids are reused)",
    async () => {
      // Before the seccomp filter, a key job A added to its uid's keyring was read by a later job B.
      const nr = process.arch === 'x64' ? 248 : 217 // add_key
      const script = [
        'import ctypes, os',
        'libc = ctypes.CDLL(None, use_errno=True)',
        `r = libc.syscall(${nr}, b"user", b"gridnode-leak", b"secret", 6, -3)`,
        'print(r, ctypes.get_errno(), os.getpid() > 0)',
      ].join('\n')
      const job = makeJob({ kind: 'command', argv: ['python3', '-c', script], env: {}, stdoutMaxBytes: 1000 })
      const out = (okValue(await run(job, 0, undefined)) as { stdout: string }).stdout.trim()
      expect(out).toBe('-1 1 True') // EPERM, and everything else works
    },
  )

  test('what a command leaves in /work goes with it, even nested past PATH_MAX or made unreadable', async () => {
    // fs.rm could not walk such a tree: its bytes stayed under the sandbox dir after every run.
    const script =
      'mkdir -p locked/in && echo x > locked/in/f && chmod 0 locked/in locked; ' +
      'for i in $(seq 300); do mkdir dddddddddddddddddddd && cd dddddddddddddddddddd || exit 1; done; ' +
      'head -c 1000000 /dev/zero > big'
    const job = makeJob({ kind: 'command', argv: ['bash', '-c', script], env: {}, stdoutMaxBytes: 1000 })
    expect((await run(job, 0, undefined)).status).toBe('ok')
    const left = spawnSync('du', ['-sb', join(s.dataDir, 'sandbox')], { encoding: 'utf8' }).stdout
    expect(Number(left.split('\t')[0])).toBeLessThan(100_000)
  })
})

describe.skipIf(!canSandbox)('sandboxed executor: own tasks and refusals', () => {
  test('own tasks stay on worker threads unless sandboxOwn', async () => {
    for (const own of [false, true]) {
      const s = await setup(1, { own })
      try {
        const job = makeJob(
          { kind: 'function', bundle: s.hashes.probing, exportName: 'whoami' },
          { owner: SELF },
        )
        const me = okValue(await s.executor.run(job, makeTask(job, 0, null), { gpus: [] })) as { cwd: string }
        expect(me.cwd === '/work').toBe(own)
      } finally {
        await s.close()
      }
    }
  })
})

describe('executor without a working sandbox', () => {
  async function withStatus(mode: 'auto' | 'none', body: (ex: Executor, hash: string) => Promise<void>) {
    const dataDir = await mkdtemp(join(tmpdir(), 'gridnode-nosandbox-'))
    const blobs = await BlobStore.open(dataDir)
    const b = await bundleModule(BASIC)
    await blobs.put(b.bytes)
    const executor = createLocalExecutor({
      dataDir,
      slots: 1,
      blobs,
      self: SELF,
      fetchBlob: async () => new Uint8Array(),
      sandbox: {
        status: { mode, available: false, acceptsForeign: mode === 'none', reason: 'no bwrap here' },
      },
    })
    try {
      await body(executor, b.hash)
    } finally {
      await executor.close()
      await rm(dataDir, { recursive: true, force: true })
    }
  }

  test('auto: a foreign task is rejected with the reason; own tasks and noop still run', async () => {
    await withStatus('auto', async (ex, hash) => {
      const foreign = makeJob({ kind: 'function', bundle: hash, exportName: 'echo' })
      const o = await ex.run(foreign, makeTask(foreign, 0, 1), { gpus: [] })
      expect(o).toMatchObject({ status: 'rejected', error: expect.stringContaining('GN_NO_SANDBOX') })
      expect((o as { error: string }).error).toContain('no bwrap here')
      const own = makeJob({ kind: 'function', bundle: hash, exportName: 'echo' }, { owner: SELF })
      expect(okValue(await ex.run(own, makeTask(own, 0, 1), { gpus: [] }))).toBe(1)
      const noop = makeJob({ kind: 'noop' })
      expect((await ex.run(noop, makeTask(noop, 0, 1), { gpus: [] })).status).toBe('ok')
      expect(ex.sandboxStatus?.().acceptsForeign).toBe(false)
    })
  })

  test('none: foreign tasks run unsandboxed (the explicit opt-out)', async () => {
    await withStatus('none', async (ex, hash) => {
      const foreign = makeJob({ kind: 'function', bundle: hash, exportName: 'echo' })
      expect(okValue(await ex.run(foreign, makeTask(foreign, 0, 2), { gpus: [] }))).toBe(2)
    })
  })
})
