/**
 * Files in and out across real daemons: a directory tree staged into every
 * task, outputs gathered into --output-dir, a large input crossing to each
 * node at most once (bytes counted by each node), a re-submitted job
 * sending no file bytes, a node that is not the owner serving a file, and
 * kill -9 of the owner and of a holder while outputs are under way.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '../../src/client/index.ts'
import type { WireResult } from '../../src/domain/api.ts'
import { decodeValue, encodeValue } from '../../src/executor/values.ts'
import { eventually, runCli, TestMesh, type TestNode } from './harness.ts'

interface FilesStats {
  servedBytes: number
  fetchedBytes: number
  corruptPieces: number
  resumedPieces: number
  heldOutputs: number
  uploadedBytes: number
}

/**
 * The test is a 200 MB input on 200 tasks; CI runs 50 MB on 24 tasks (2 cores, 25 minutes
 * for everything). `GRIDNODE_FILES_TEST_MB=200 GRIDNODE_FILES_TEST_TASKS=200` runs the full size:
 * 584 s on a loaded 2-core machine, mostly 400 tasks each hashing 200 MB.
 */
const BIG_MB = Number(process.env.GRIDNODE_FILES_TEST_MB ?? 50)
const BIG_TASKS = Number(process.env.GRIDNODE_FILES_TEST_TASKS ?? 24)
const BIG_TIMEOUT_MS = Math.max(240_000, BIG_MB * BIG_TASKS * 30)

const files = async (n: TestNode) => (await n.api<{ files: FilesStats }>('/v1/status')).files

async function waitForMembers(nodes: TestNode[]): Promise<void> {
  for (const n of nodes) {
    await eventually(
      `${n.name} to see ${nodes.length - 1} members`,
      async () => (await n.api<unknown[]>('/v1/peers')).length >= nodes.length - 1,
      30_000,
    )
  }
}

function sha256(b: Uint8Array): string {
  return createHash('sha256').update(b).digest('hex')
}

/** The id of the latest job on `node` (the CLI prints results, not ids). */
async function latestJob(node: TestNode): Promise<string> {
  const jobs = await node.api<Array<{ id: string; createdAt: number }>>('/v1/jobs?limit=1')
  return jobs[0].id
}

describe('files in and out on a four-node mesh', () => {
  const mesh = new TestMesh('files')
  let a: TestNode
  let nodes: TestNode[]
  let work: string

  beforeAll(async () => {
    a = await mesh.add('a', { cpus: 1 })
    const rest = [
      await mesh.add('b', { cpus: 1 }),
      await mesh.add('c', { cpus: 1 }),
      await mesh.add('d', { cpus: 1 }),
    ]
    nodes = [a, ...rest]
    await waitForMembers(nodes)
    work = join(mesh.root, 'work')
    mkdirSync(work, { recursive: true })
  }, 120_000)
  afterAll(() => mesh.stopAll())

  it('stages a directory tree into every task and gathers outputs into --output-dir, one dir per input', async () => {
    const scene = join(work, 'scene')
    mkdirSync(join(scene, 'tex', 'deep'), { recursive: true })
    writeFileSync(join(scene, 'main.txt'), 'main\n')
    writeFileSync(join(scene, 'tex', 'deep', 't.txt'), 'texture\n')
    const script = join(work, 'render.sh')
    writeFileSync(
      script,
      '#!/bin/sh\ncat scene/main.txt scene/tex/deep/t.txt > "frame.txt"\necho "$1" >> frame.txt\nsleep 0.3\n',
      {
        mode: 0o755,
      },
    )
    const out = join(work, 'out-tree')
    const inputs = Array.from({ length: 8 }, (_, i) => `f${i}`).join('\n')
    const r = await runCli(
      [
        'run',
        '--data-dir',
        a.dataDir,
        '--file',
        scene,
        '--file',
        script,
        '--output',
        'frame.txt',
        '--output-dir',
        `${out}/{}`,
        '--',
        './render.sh',
        '{}',
      ],
      `${inputs}\n`,
    )
    expect(r.code, r.stderr).toBe(0)
    for (let i = 0; i < 8; i++)
      expect(readFileSync(join(out, `f${i}`, 'frame.txt'), 'utf8')).toBe(`main\ntexture\nf${i}\n`)
    const stored = await a.api<WireResult[]>(`/v1/jobs/${await latestJob(a)}/results`)
    expect(stored.every((s) => s.ok && s.outputs?.length === 1)).toBe(true)
    expect(new Set(stored.map((s) => s.ranOn)).size).toBeGreaterThan(1)
  }, 120_000)

  it('fails the later of two tasks that write the same output path, naming both', async () => {
    const out = join(work, 'out-clash')
    const r = await runCli(
      [
        'run',
        '--data-dir',
        a.dataDir,
        '--output',
        'same.txt',
        '--output-dir',
        out,
        '--',
        'sh',
        '-c',
        'echo $0 > same.txt',
      ],
      '1\n2\n',
    )
    expect(r.code).toBe(1)
    expect(r.stderr).toMatch(/same\.txt is written by task \d and by task \d/)
    expect(readdirSync(out)).toEqual(['same.txt'])
  }, 60_000)

  it(
    'moves a large input to each node at most once, and a re-submitted job sends no file bytes',
    async () => {
      const big = join(work, 'big.bin')
      const bytes = randomBytes(BIG_MB * 1024 * 1024)
      writeFileSync(big, bytes)
      const want = sha256(bytes).slice(0, 16)
      const before = await Promise.all(nodes.map(files))
      const inputs = Array.from({ length: BIG_TASKS }, (_, i) => String(i)).join('\n')
      const cmd = ['sh', '-c', 'sha256sum big.bin | cut -c1-16; sleep 0.2']
      const r = await runCli(['run', '--data-dir', a.dataDir, '--file', big, '--', ...cmd], `${inputs}\n`)
      expect(r.code, r.stderr).toBe(0)
      expect(new Set(r.stdout.trim().split('\n'))).toEqual(new Set([want]))
      const after = await Promise.all(nodes.map(files))
      expect(after[0].uploadedBytes - before[0].uploadedBytes).toBe(bytes.byteLength)
      for (let i = 1; i < nodes.length; i++)
        expect(after[i].fetchedBytes - before[i].fetchedBytes).toBeLessThanOrEqual(bytes.byteLength)
      // Nodes fetching the file at once serve each other the pieces they already have: the owner
      // sends markedly less than one copy per fetching node.
      const fetched = nodes.map((_, i) => after[i].fetchedBytes - before[i].fetchedBytes)
      const served = nodes.map((_, i) => after[i].servedBytes - before[i].servedBytes)
      console.log(`${BIG_MB} MB file, ${BIG_TASKS} tasks: fetched ${fetched}, served ${served}`)
      const fetchers = fetched.filter((n) => n > 0).length
      expect(fetchers).toBeGreaterThanOrEqual(2)
      expect(served[0]).toBeLessThan(0.6 * fetchers * bytes.byteLength)
      expect(served.slice(1).reduce((x, y) => x + y, 0)).toBeGreaterThan(0)
      const stored = await a.api<WireResult[]>(`/v1/jobs/${await latestJob(a)}/results`)
      const ran = new Set(stored.map((s) => s.ranOn))
      expect(ran.size).toBeGreaterThan(1)

      // The same job again: nothing is uploaded, nothing crosses the mesh.
      const again = await runCli(['run', '--data-dir', a.dataDir, '--file', big, '--', ...cmd], `${inputs}\n`)
      expect(again.code, again.stderr).toBe(0)
      const third = await Promise.all(nodes.map(files))
      for (let i = 0; i < nodes.length; i++) {
        expect(third[i].uploadedBytes).toBe(after[i].uploadedBytes)
        expect(third[i].fetchedBytes).toBe(after[i].fetchedBytes)
      }
    },
    BIG_TIMEOUT_MS,
  )

  it('serves a file from nodes that are not its owner', async () => {
    // A new node lacks the big file; the others that hold it share the sending with the owner.
    const e = await mesh.add('e', { cpus: 2 })
    nodes.push(e)
    await waitForMembers(nodes)
    const before = await Promise.all(nodes.map(files))
    const big = join(work, 'big.bin')
    const inputs = Array.from({ length: 20 }, (_, i) => String(i)).join('\n')
    const r = await runCli(
      ['run', '--data-dir', a.dataDir, '--file', big, '--', 'sh', '-c', 'test -s big.bin && sleep 1'],
      `${inputs}\n`,
    )
    expect(r.code, r.stderr).toBe(0)
    const after = await Promise.all(nodes.map(files))
    const fetchedByE = after[4].fetchedBytes - before[4].fetchedBytes
    expect(fetchedByE).toBeGreaterThan(0)
    expect(fetchedByE).toBeLessThanOrEqual(BIG_MB * 1024 * 1024)
    const servedByOthers = [1, 2, 3].reduce((n, i) => n + after[i].servedBytes - before[i].servedBytes, 0)
    expect(servedByOthers).toBeGreaterThan(0)
  }, 180_000)

  it('passes dependency values over 1 MiB as blobs to a dependent on another node', async () => {
    // e (2 CPUs) is the only node that fits a 2-CPU task: the dependents run there, not on a.
    const e = nodes[4]
    const fixture = new URL('./fixtures/big-values.ts', import.meta.url)
    const grid = await connect({ dataDir: a.dataDir })
    const before = await files(e)
    // Futures: two 5 MB results feed one task (10 MB of arguments: past the 8 MiB message cap inline).
    const x = grid.submit<string>(fixture, 'big', [5_000_000, 'x'])
    const y = grid.submit<string>(fixture, 'big', [5_000_000, 'y'])
    const both = grid.submit<string>(fixture, 'describe', [x, y], { cpu: 2 })
    expect(await both).toBe('5000000x,5000000y')
    const ranOn = (await a.api<WireResult[]>(`/v1/jobs/${both.id}/results`))[0].ranOn
    expect(ranOn).toBe(e.peerId)
    // Dependencies within one job (tasks[].deps): two 5 MB results feed task 2, all on e, owned by a.
    const bundle = await (grid as unknown as { bundle(m: URL, e: string): Promise<string> }).bundle(
      fixture,
      'big',
    )
    const client = (
      grid as unknown as { client: { request<T>(m: string, p: string, b: Uint8Array): Promise<T> } }
    ).client
    const { id } = await client.request<{ id: string }>(
      'POST',
      '/v1/jobs',
      encodeValue({
        name: 'deps over 1 MiB',
        work: { kind: 'function', bundle, exportName: 'relay', call: 'apply' },
        resources: { cpu: 2, gpu: 0, memoryMB: 0 },
        timeoutMs: 0,
        retries: 0,
        maxAttempts: 3,
        tasks: [
          { input: encodeValue(['a'.repeat(5_000_000)], 'arguments'), deps: [] },
          { input: encodeValue(['b'.repeat(5_000_000)], 'arguments'), deps: [] },
          { input: encodeValue([{ $gridnodeDep: 0 }, { $gridnodeDep: 1 }], 'arguments'), deps: [0, 1] },
        ],
      }),
    )
    const job = await eventually(
      'the job with deps to end',
      async () => {
        const j = await a.api<{ status: string }>(`/v1/jobs/${id}`)
        return j.status === 'running' ? undefined : j
      },
      120_000,
    )
    expect(job.status).toBe('done')
    const stored = await a.api<Array<WireResult & { value: string | null }>>(`/v1/jobs/${id}/results`)
    expect(stored.map((r) => [r.index, r.ok, r.ranOn])).toEqual([
      [0, true, e.peerId],
      [1, true, e.peerId],
      [2, true, e.peerId],
    ])
    expect(decodeValue(Buffer.from(stored[2].value!, 'base64'))).toBe('5000000a,5000000b')
    // The futures' values reached e as blobs fetched by hash (the job's own results were there already).
    expect((await files(e)).fetchedBytes - before.fetchedBytes).toBeGreaterThanOrEqual(10_000_000)
  }, 180_000)

  it('loses and duplicates no output when the owner, then a holder, is killed -9 mid-job', async () => {
    const out = join(work, 'out-kill')
    const total = 12
    const inputs = Array.from({ length: total }, (_, i) => String(i)).join('\n')
    const cli = runCli(
      [
        'run',
        '--data-dir',
        a.dataDir,
        '--output',
        'o-*.bin',
        '--output-dir',
        join(work, 'out-kill-live'),
        '--',
        'sh',
        '-c',
        'head -c 3000000 /dev/urandom > o-$0.bin; sleep 1',
      ],
      `${inputs}\n`,
    )
    const id = await eventually('the job to exist', async () => {
      const jobs = await a.api<Array<{ id: string; status: string; name: string }>>('/v1/jobs?limit=1')
      return jobs[0]?.status === 'running' && jobs[0].name.startsWith('sh -c head') ? jobs[0].id : undefined
    })
    await eventually(
      'a first result',
      async () => (await a.api<WireResult[]>(`/v1/jobs/${id}/results`)).length > 0,
    )
    await a.kill9()
    await cli
    await a.start()
    const b = nodes[1]
    await eventually(
      'a result after the restart',
      async () => (await a.api<WireResult[]>(`/v1/jobs/${id}/results`)).length > 3,
      60_000,
    )
    await b.kill9()
    await eventually(
      'the job to finish',
      async () => (await a.api<{ status: string }>(`/v1/jobs/${id}`)).status === 'done',
      120_000,
      500,
    )
    const stored = await a.api<WireResult[]>(`/v1/jobs/${id}/results`)
    expect(stored.map((s) => s.index)).toEqual([...Array(total).keys()])
    expect(stored.every((s) => s.ok && s.outputs?.length === 1)).toBe(true)
    const r = await runCli(['results', id, '--data-dir', a.dataDir, '--output-dir', out])
    expect(r.code, r.stderr).toBe(0)
    const names = readdirSync(out).sort()
    expect(names).toEqual([...Array(total).keys()].map((i) => `o-${i}.bin`).sort())
    for (const s of stored) {
      const f = s.outputs![0]
      expect(sha256(readFileSync(join(out, f.name)))).toBe(f.sha256)
    }
    await b.start()
  }, 300_000)

  it('sends task inputs and results over 1 MiB as blobs, even past the 8 MiB message cap', async () => {
    const grid = await connect({ dataDir: a.dataDir })
    const before = await Promise.all(nodes.map(files))
    const inputs = Array.from({ length: 6 }, (_, i) =>
      String.fromCharCode(97 + i).repeat(i < 3 ? 2_000_000 : 5_000_000),
    )
    const job = grid.map<string, string>(
      new URL('./fixtures/big-values.ts', import.meta.url),
      'double',
      inputs,
      // On this 2-core box, four daemons moving 10 MB values sometimes drop a connection (the
      // connection monitor's 2 s ping timeout): the task is then run again elsewhere.
      { maxAttempts: 8 },
    )
    const values = await job.results()
    expect(values.map((v) => v.length)).toEqual(inputs.map((s) => 2 * s.length))
    expect(values.every((v, i) => v === inputs[i] + inputs[i])).toBe(true)
    // Where another node ran a task, its input crossed as a blob (the owner may run them all itself).
    const stored = await a.api<WireResult[]>(`/v1/jobs/${await job.id}/results`)
    const after = await Promise.all(nodes.map(files))
    const fetchedByOthers = nodes
      .slice(1)
      .reduce((n, _, i) => n + after[i + 1].fetchedBytes - before[i + 1].fetchedBytes, 0)
    if (stored.some((r) => r.ranOn !== a.peerId)) expect(fetchedByOthers).toBeGreaterThan(1_000_000)
  }, 120_000)

  it('refuses a missing --file before submitting anything', async () => {
    const r = await runCli(
      ['run', '--data-dir', a.dataDir, '--file', join(work, 'nope'), '--', 'true'],
      '1\n',
    )
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(/nope: no such file or directory/)
  }, 30_000)
})

describe('file transfers cut midway and corrupt pieces', () => {
  const mesh = new TestMesh('files-faults')
  let a: TestNode
  let b: TestNode
  let work: string
  let big: string
  let hash: string
  const size = 40 * 1024 * 1024

  beforeAll(async () => {
    // a (the owner) serves every piece slowly, so a transfer can be cut midway; b corrupts the
    // first three pieces it serves.
    a = await mesh.add('a', { cpus: 1, env: { GRIDNODE_FAULT_SLOW_PIECE_MS: '1500' } })
    b = await mesh.add('b', { cpus: 1, env: { GRIDNODE_FAULT_CORRUPT_PIECES: '3' } })
    await waitForMembers([a, b])
    work = join(mesh.root, 'work')
    mkdirSync(work, { recursive: true })
    big = join(work, 'big.bin')
    const bytes = randomBytes(size)
    writeFileSync(big, bytes)
    hash = sha256(bytes)
  }, 120_000)
  afterAll(() => mesh.stopAll())

  const job = (n: number, what: string) =>
    runCli(
      ['run', '--data-dir', a.dataDir, '--file', big, '--', 'sh', '-c', `${what}; sleep 1`],
      `${Array.from({ length: n }, (_, i) => i).join('\n')}\n`,
    )

  it('resumes a transfer cut by kill -9 from the pieces already verified', async () => {
    const first = job(6, 'test -s big.bin')
    await eventually(
      'b to be midway through the file',
      async () => {
        const s = await files(b)
        return s.fetchedBytes > 0 && s.fetchedBytes < size
      },
      60_000,
      50,
    )
    await b.kill9()
    await b.start()
    expect((await first).code).toBe(0)
    const have = async () => (await b.api<{ have: boolean }>(`/v1/files/${hash}`)).have
    for (let round = 0; round < 5 && !(await have()); round++) {
      const r = await job(6, 'test -s big.bin')
      expect(r.code, r.stderr).toBe(0)
    }
    expect(await have()).toBe(true)
    const s = await files(b)
    expect(s.resumedPieces).toBeGreaterThan(0)
    expect(s.fetchedBytes).toBeLessThan(size)
  }, 240_000)

  it('refuses a corrupt piece by its hash and fetches it again from another source', async () => {
    const c = await mesh.add('c', { cpus: 1 })
    await waitForMembers([a, b, c])
    const have = async () => (await c.api<{ have: boolean }>(`/v1/files/${hash}`)).have
    // b is skipped after its first corrupt range, so c gets the rest from a, which serves each
    // 1 MiB range 1.5 s late (~30 s for the file): a round lasts only as long as its job, and the
    // fetch resumes in the next one. Rounds until c holds the file, within the test's time.
    const until = Date.now() + 180_000
    while (Date.now() < until && !(await have())) {
      const r = await job(9, 'sha256sum big.bin | cut -c1-64')
      expect(r.code, r.stderr).toBe(0)
      expect(new Set(r.stdout.trim().split('\n'))).toEqual(new Set([hash]))
    }
    expect(await have()).toBe(true)
    const [sb, sc] = await Promise.all([files(b), files(c)])
    expect(sc.corruptPieces).toBeGreaterThan(0)
    expect(sb.servedBytes).toBeGreaterThan(0)
  }, 240_000)
})
