/**
 * The file examples, run as a person would run them against a small real
 * mesh: param-sweep (a staged CSV in, one result file per row out) and
 * render-farm (POV-Ray frames gathered into an animated PNG; needs Debian's
 * `povray`, which .ci/run installs).
 */
import { execFileSync } from 'node:child_process'
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  type CliResult,
  eventually,
  REPO,
  runProcess,
  TestMesh,
  type TestNode,
} from '../integration/harness.ts'

const EXAMPLES = join(REPO, 'examples')
const out = mkdtempSync(join(tmpdir(), 'gridnode-file-examples-'))
const hasPovray = (() => {
  try {
    execFileSync('povray', ['--version'], { stdio: 'ignore' })
    return true
  } catch {
    return false
  }
})()

describe('file examples on a two-node mesh', () => {
  const mesh = new TestMesh('file-examples')
  let node: TestNode

  function run(argv: string[]): Promise<CliResult> {
    return runProcess(argv[0], argv.slice(1), {
      cwd: out,
      env: {
        GRIDNODE_HOME: node.dataDir,
        GRIDNODE_FROM_SOURCE: '1',
        PATH: `${dirname(process.execPath)}:${process.env.PATH}`,
      },
    })
  }

  beforeAll(async () => {
    const a = await mesh.add('a', { cpus: 1 })
    node = await mesh.add('b', { cpus: 1, bootstrap: [a.addr] })
    await eventually(
      'the nodes to see each other',
      async () => (await node.api<unknown[]>('/v1/peers')).length >= 1,
    )
  }, 60_000)
  afterAll(async () => {
    await mesh.stopAll()
    rmSync(out, { recursive: true, force: true })
  })

  it('param-sweep reads the staged CSV and writes one result file per row', async () => {
    const r = await run(['sh', join(EXAMPLES, 'param-sweep/sweep.sh'), '--data-dir', node.dataDir])
    expect(r.code, r.stderr).toBe(0)
    const files = readdirSync(join(out, 'sweep-results')).sort()
    expect(files).toHaveLength(8)
    expect(readFileSync(join(out, 'sweep-results', 'result-calm.txt'), 'utf8')).toBe(
      'calm r=2.8 settles on 1 value\n',
    )
    expect(readFileSync(join(out, 'sweep-results', 'result-four.txt'), 'utf8')).toBe(
      'four r=3.5 settles on 4 values\n',
    )
    expect(r.stdout).toMatch(/chaos r=3\.7 settles on many values/)
  }, 60_000)

  it.skipIf(!hasPovray)(
    'render-farm renders frames with POV-Ray and assembles an animated PNG',
    async () => {
      const apng = join(out, 'farm.png')
      const r = await run([
        process.execPath,
        join(EXAMPLES, 'render-farm/main.ts'),
        '--frames',
        '6',
        '--width',
        '96',
        '--height',
        '72',
        '--out',
        apng,
      ])
      expect(r.code, r.stderr).toBe(0)
      expect(r.stdout).toMatch(/^wrote .*farm\.png: 6 frames of 96x72 from [12] nodes? in/)
      const bytes = readFileSync(apng)
      expect(bytes.toString('ascii', 12, 16)).toBe('IHDR')
      expect(bytes.readUInt32BE(16)).toBe(96)
      expect(bytes.toString('ascii', 37, 41)).toBe('acTL')
      expect(bytes.readUInt32BE(41)).toBe(6)
      expect(readdirSync(join(out, 'farm-frames')).sort()).toEqual(
        [0, 1, 2, 3, 4, 5].map((i) => `frame-${i}.png`).sort(),
      )
    },
    120_000,
  )
})
