/**
 * Function tasks with files, across real daemons (issue 14, issue 17 bug 11): a job stages a
 * directory, each task reads it by relative path in a working dir of its own and writes an
 * output there, and the outputs arrive in --output-dir (CLI) and outputDir (library). Once on
 * plain process slots (`--sandbox none`), once sandboxed (`--sandbox bwrap`) where bwrap works.
 */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '../../src/client/index.ts'
import type { WireResult } from '../../src/domain/api.ts'
import { probeSandbox } from '../../src/executor/sandbox/probe.ts'
import { eventually, runCli, TestMesh, type TestNode } from './harness.ts'

const MODULE = fileURLToPath(new URL('./fixtures/files-function.ts', import.meta.url))
const probeDir = mkdtempSync(join(tmpdir(), 'gridnode-files-fn-probe-'))
const probe = await probeSandbox('bwrap', { baseDir: join(probeDir, 'sandbox') })
rmSync(probeDir, { recursive: true, force: true })

async function waitForMembers(nodes: TestNode[]): Promise<void> {
  for (const n of nodes) {
    await eventually(
      `${n.name} to see ${nodes.length - 1} members`,
      async () => (await n.api<unknown[]>('/v1/peers')).length >= nodes.length - 1,
      30_000,
    )
  }
}

function makeScene(work: string): string {
  const scene = join(work, 'scene')
  mkdirSync(join(scene, 'tex'), { recursive: true })
  writeFileSync(join(scene, 'main.txt'), 'main\n')
  writeFileSync(join(scene, 'tex', 't.txt'), 'texture\n')
  return scene
}

const frames = (n: number) => Array.from({ length: n }, (_, i) => `f${i}`)

/** Nothing a task wrote landed in a daemon's cwd (the harness starts them in this process's cwd). */
function expectNoStrayFrames(): void {
  expect(readdirSync(process.cwd()).filter((n) => n.startsWith('frame-'))).toEqual([])
}

describe('function tasks with files on three plain nodes', () => {
  const mesh = new TestMesh('files-fn')
  let a: TestNode
  let nodes: TestNode[]
  let work: string
  let scene: string

  beforeAll(async () => {
    const plain = { cpus: 1, extraArgs: ['--sandbox', 'none'] }
    a = await mesh.add('a', plain)
    nodes = [
      a,
      await mesh.add('b', { ...plain, bootstrap: [a.addr] }),
      await mesh.add('c', { ...plain, bootstrap: [a.addr] }),
    ]
    await waitForMembers(nodes)
    work = join(mesh.root, 'work')
    mkdirSync(work, { recursive: true })
    scene = makeScene(work)
  }, 120_000)
  afterAll(() => mesh.stopAll())

  it('gridnode map --file --output --output-dir: each task reads the staged dir and its output comes back', async () => {
    const out = join(work, 'out-cli')
    const inputs = frames(9)
    const r = await runCli(
      [
        'map',
        MODULE,
        'render',
        '--data-dir',
        a.dataDir,
        '--inputs',
        '-',
        '--file',
        scene,
        '--output',
        'frame-*.txt',
        '--output-dir',
        out,
      ],
      `${inputs.map((f) => JSON.stringify(f)).join('\n')}\n`,
    )
    expect(r.code, r.stderr).toBe(0)
    expect(readdirSync(out).sort()).toEqual(inputs.map((f) => `frame-${f}.txt`).sort())
    for (const f of inputs)
      expect(readFileSync(join(out, `frame-${f}.txt`), 'utf8')).toBe(`main\ntexture\n${f}\n`)
    const jobs = await a.api<Array<{ id: string }>>('/v1/jobs?limit=1')
    const results = await a.api<WireResult[]>(`/v1/jobs/${jobs[0].id}/results`)
    expect(results.every((x) => x.ok && x.outputs?.length === 1)).toBe(true)
    // Peers ran some (the files crossed the mesh), in a fresh dir each: the staged scene only.
    expect(new Set(results.map((x) => x.ranOn)).size).toBeGreaterThan(1)
    expectNoStrayFrames()
    for (const n of nodes) expect(readdirSync(join(n.dataDir, 'scratch'))).toEqual([])
  }, 120_000)

  it('grid.map with files, outputs and outputDir', async () => {
    const out = join(work, 'out-lib')
    const grid = await connect({ dataDir: a.dataDir })
    const inputs = frames(6)
    const job = grid.map<string, { cwd: string; entries: string[] }>(MODULE, 'render', inputs, {
      files: [scene],
      outputs: ['frame-*.txt'],
      outputDir: join(out, '{}'),
    })
    // What the input files did before the job was submitted (the CLI's bar shows it): the scene
    // ran earlier in this file, so its two files are on the daemon already.
    const steps: string[] = []
    job.on('inputs', (s) => steps.push(`${s.index + 1}/${s.count} ${s.file} ${s.step}`))
    const seen = await job.results()
    expect(steps).toEqual([
      '1/2 scene/main.txt hashing',
      '1/2 scene/main.txt present',
      '2/2 scene/tex/t.txt hashing',
      '2/2 scene/tex/t.txt present',
    ])
    for (const [i, v] of seen.entries()) {
      // Fresh: the staged scene and its own frame, no other task's.
      expect(v.entries).toEqual([`frame-${inputs[i]}.txt`, 'scene'])
      expect(v.cwd).toMatch(/[/]scratch[/]/)
      expect(readFileSync(join(out, inputs[i], `frame-${inputs[i]}.txt`), 'utf8')).toBe(
        `main\ntexture\n${inputs[i]}\n`,
      )
    }
    expectNoStrayFrames()
  }, 120_000)

  it("a function task without files runs in the daemon's own cwd, an empty dir of its data dir", async () => {
    const grid = await connect({ dataDir: a.dataDir })
    const cwds = await grid.map<string, string>(MODULE, 'writeHere', ['x', 'y']).results()
    const dirs = new Set(nodes.map((n) => join(n.dataDir, 'cwd')))
    for (const cwd of cwds) expect(dirs.has(cwd), cwd).toBe(true)
    expect(readdirSync(process.cwd()).filter((n) => n.startsWith('stray-'))).toEqual([])
  }, 60_000)
})

describe.skipIf(!probe.status.available)('function tasks with files, sandboxed', () => {
  const mesh = new TestMesh('files-fn-sbx')
  let owner: TestNode
  let work: string
  let scene: string

  beforeAll(async () => {
    owner = await mesh.add('owner', { cpus: 1 })
    const worker = await mesh.add('worker', {
      cpus: 2,
      bootstrap: [owner.addr],
      extraArgs: ['--sandbox', 'bwrap'],
    })
    await waitForMembers([owner, worker])
    work = join(mesh.root, 'work')
    mkdirSync(work, { recursive: true })
    scene = makeScene(work)
  }, 120_000)
  afterAll(() => mesh.stopAll())

  it('each task gets a sandbox of its own with the scene under /work; outputs reach outputDir', async () => {
    const out = join(work, 'out')
    const grid = await connect({ dataDir: owner.dataDir })
    const inputs = frames(4)
    // cpu 2: only the worker fits, so every task is another node's there, sandboxed.
    const job = grid.map<string, { cwd: string; entries: string[] }>(MODULE, 'render', inputs, {
      cpu: 2,
      maxAttempts: 1,
      files: [scene],
      outputs: ['frame-*.txt'],
      outputDir: out,
    })
    const seen = await job.results()
    for (const [i, v] of seen.entries()) {
      expect(v.cwd).toBe('/work')
      // Fresh: no other task's frame in it.
      expect(v.entries).toEqual(['.tmp', `frame-${inputs[i]}.txt`, 'scene'])
      expect(readFileSync(join(out, `frame-${inputs[i]}.txt`), 'utf8')).toBe(`main\ntexture\n${inputs[i]}\n`)
    }
    expect(existsSync(join(out, 'scene'))).toBe(false)
  }, 120_000)
})
