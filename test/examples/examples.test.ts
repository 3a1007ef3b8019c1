/**
 * Every example in examples/, run as a person would run it (a child process
 * with the Node that runs the tests), against a small real mesh: two daemons
 * on loopback, the examples talking to the one that is not the bootstrap peer.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { inflateSync } from 'node:zlib'
import { CID } from 'multiformats/cid'
import * as raw from 'multiformats/codecs/raw'
import { sha256 } from 'multiformats/hashes/sha2'
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
const out = mkdtempSync(join(tmpdir(), 'gridnode-examples-'))

describe('examples/ on a two-node mesh', () => {
  const mesh = new TestMesh('examples')
  let node: TestNode

  /** Runs a command with GRIDNODE_HOME pointing at the mesh's second node, as `connect()` finds it. */
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

  it('monte-carlo-pi estimates pi', async () => {
    const r = await run([
      process.execPath,
      join(EXAMPLES, 'monte-carlo-pi/main.ts'),
      '--tasks',
      '30',
      '--samples',
      '200000',
    ])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const m = /^pi ≈ (\d\.\d+) .* from 6000000 points on [12] nodes?\n$/.exec(r.stdout)
    expect(m, r.stdout).not.toBeNull()
    expect(Math.abs(Number(m![1]) - Math.PI)).toBeLessThan(0.01)
  })

  it('mandelbrot writes a PNG of the requested size, assembled from its tiles', async () => {
    const png = join(out, 'm.png')
    const r = await run([
      process.execPath,
      join(EXAMPLES, 'mandelbrot/main.ts'),
      '--out',
      png,
      '--width',
      '320',
      '--height',
      '200',
      '--tile',
      '64',
      '--max-iter',
      '200',
    ])
    expect(r.code).toBe(0)
    expect(r.stdout).toMatch(/^wrote .*m\.png: 320x200, 20 tiles in/)
    const bytes = readFileSync(png)
    expect(bytes.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))
    expect(bytes.toString('ascii', 12, 16)).toBe('IHDR')
    expect(bytes.readUInt32BE(16)).toBe(320)
    expect(bytes.readUInt32BE(20)).toBe(200)
    expect([bytes[24], bytes[25]]).toEqual([8, 2]) // 8-bit RGB
    // The pixels: one filter byte per row, then RGB; the set's inside is black, the outside is not.
    const idatLength = bytes.readUInt32BE(33)
    expect(bytes.toString('ascii', 37, 41)).toBe('IDAT')
    const pixels = inflateSync(bytes.subarray(41, 41 + idatLength))
    expect(pixels.length).toBe((320 * 3 + 1) * 200)
    const at = (x: number, y: number) => [...pixels.subarray(y * 961 + 1 + x * 3, y * 961 + 1 + x * 3 + 3)]
    expect(at(230, 100)).toEqual([0, 0, 0]) // inside the main cardioid
    expect(at(2, 2)).not.toEqual([0, 0, 0]) // far outside
  })

  it('npm-in-task hashes with multiformats inside the tasks, and chains futures', async () => {
    const words = ['alpha', 'beta', 'gamma', 'delta']
    const r = await run([process.execPath, join(EXAMPLES, 'npm-in-task/main.ts'), ...words])
    expect(r.code).toBe(0)
    const cidOf = async (text: string) =>
      CID.create(1, raw.code, await sha256.digest(new TextEncoder().encode(text))).toString()
    const cids = await Promise.all(words.map(cidOf))
    const root = await cidOf(
      `${await cidOf(`${cids[0]}\n${cids[1]}`)}\n${await cidOf(`${cids[2]}\n${cids[3]}`)}`,
    )
    expect(r.stdout).toBe(
      `${words.map((w, i) => `${cids[i]}  ${w}\n`).join('')}${root}  root of the first four\n`,
    )
  })

  it('run-fanout factors numbers with gridnode run, in input order', async () => {
    const r = await run(['sh', join(EXAMPLES, 'run-fanout/primes.sh'), '--data-dir', node.dataDir])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const lines = r.stdout.trim().split('\n')
    expect(lines).toHaveLength(20)
    lines.forEach((line, i) => {
      const [n, factors] = line.split(': ')
      expect(BigInt(n)).toBe(1000000000001n + BigInt(i))
      expect(factors.split(' ').reduce((p, f) => p * BigInt(f), 1n)).toBe(BigInt(n))
    })
  })
})
