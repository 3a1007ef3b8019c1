/**
 * `gridnode map` and `gridnode run` end to end: three real daemons on
 * loopback, every command given to a node that is not the bootstrap peer.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { type CliResult, eventually, runCli, TestMesh, type TestNode } from './harness.ts'

const WORK = fileURLToPath(new URL('./fixtures/cli-work.ts', import.meta.url))
const files = mkdtempSync(join(tmpdir(), 'gridnode-cli-map-'))

function jsonl(name: string, values: unknown[]): string {
  const path = join(files, name)
  writeFileSync(path, values.map((v) => JSON.stringify(v)).join('\n') + '\n')
  return path
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '')
}

describe('gridnode map and run on a three-node mesh', () => {
  const mesh = new TestMesh('cli-map')
  let nodes: TestNode[]
  let c: TestNode

  beforeAll(async () => {
    const a = await mesh.add('a', { cpus: 1 })
    const rest = await Promise.all(['b', 'c'].map((n) => mesh.add(n, { cpus: 1, bootstrap: [a.addr] })))
    nodes = [a, ...rest]
    c = rest[1]
    for (const n of nodes) {
      await eventually(
        `${n.name} to see the others`,
        async () => (await n.api<unknown[]>('/v1/peers')).length >= 2,
      )
    }
  }, 60_000)
  afterAll(async () => {
    await mesh.stopAll()
    rmSync(files, { recursive: true, force: true })
  })

  /** `gridnode run`: the data dir goes before `--`, or it would be part of the command. */
  const run = (args: string[], input?: string): Promise<CliResult> =>
    runCli(['run', '--data-dir', c.dataDir, ...args], input)

  const inputs = Array.from({ length: 40 }, (_, i) => i)

  it('prints one JSON value per input, in input order, without --json', async () => {
    const r = await c.cli(['map', WORK, 'square', '--inputs', jsonl('squares.jsonl', inputs)])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    expect(lines(r.stdout)).toEqual(inputs.map((i) => String(i * i)))
  })

  it('prints one JSON line per result with --json, as they complete', async () => {
    const sleeps = inputs.map((i) => 20 + (i % 5))
    const r = await c.cli(['map', WORK, 'sleepThen', '--inputs', jsonl('sleeps.jsonl', sleeps), '--json'])
    expect(r.code).toBe(0)
    const got = lines(r.stdout).map((l) => JSON.parse(l) as { index: number; value: number })
    expect(got.map((g) => g.index).sort((x, y) => x - y)).toEqual(inputs)
    for (const g of got) expect(g).toEqual({ index: g.index, value: sleeps[g.index] })
    // Every result came from a member of the mesh. (Whether the tasks spread depends on timing:
    // on a loaded 2-core box a 2 s job can finish before any steal, so this test does not insist.)
    const [job] = await c.api<Array<{ id: string }>>('/v1/jobs?limit=1')
    const stored = await c.api<Array<{ ranOn: string }>>(`/v1/jobs/${job.id}/results`)
    const members = new Set(nodes.map((n) => n.peerId))
    expect(stored.every((s) => members.has(s.ranOn))).toBe(true)
  })

  it('calls the default export when none is named', async () => {
    const r = await c.cli(['map', WORK, '--inputs', jsonl('double.jsonl', [1, 2, 3]), '--json'])
    expect(r.code).toBe(0)
    const got = lines(r.stdout).map((l) => JSON.parse(l))
    expect(got.sort((x, y) => x.index - y.index)).toEqual([
      { index: 0, value: 2 },
      { index: 1, value: 4 },
      { index: 2, value: 6 },
    ])
  })

  it('reads stdin with --inputs - and writes --out <file>', async () => {
    const out = join(files, 'out.txt')
    const r = await c.cli(['map', WORK, 'square', '--inputs', '-', '--out', out], '3\n\n4\n')
    expect(r.code).toBe(0)
    expect(r.stdout).toBe('')
    expect(readFileSync(out, 'utf8')).toBe('9\n16\n')
  })

  it('exits 1 when some inputs fail, still printing the others, with a summary on stderr', async () => {
    const r = await c.cli(['map', WORK, 'failsOnOdd', '--inputs', jsonl('odd.jsonl', [0, 1, 2, 3, 4, 5])])
    expect(r.code).toBe(1)
    expect(lines(r.stdout)).toEqual(['0', '2', '4'])
    expect(r.stderr).toContain('task 1 (input line 2) failed: odd input 1')
    expect(r.stderr).toMatch(/3 of 6 tasks failed \(job \S+;/)
    const j = await c.cli(['map', WORK, 'failsOnOdd', '--inputs', jsonl('odd2.jsonl', [0, 1]), '--json'])
    expect(j.code).toBe(1)
    const got = lines(j.stdout).map((l) => JSON.parse(l))
    expect(got).toContainEqual({ index: 0, value: 0 })
    expect(got).toContainEqual({ index: 1, error: 'odd input 1' })
    expect(j.stderr).toMatch(/1 of 2 tasks failed/)
  })

  it('prints values JSON cannot hold in their JSON-safe forms', async () => {
    const r = await c.cli(['map', WORK, 'rich', '--inputs', jsonl('rich.jsonl', [1])])
    expect(r.code).toBe(0)
    expect(JSON.parse(r.stdout)).toEqual({
      big: { $bigint: '100000000000000000000' },
      map: { $map: [['x', 1]] },
      bytes: { $bytes: Buffer.from([1, 255]).toString('base64') },
      floats: { $typed: 'Float64Array', values: [1, 0.5] },
      when: { $date: '2026-01-02T00:00:00.000Z' },
      nan: { $number: 'NaN' },
    })
  })

  it('runs a command per input with {} replaced, stdout in input order', async () => {
    const words = ['alpha', 'beta', 'gamma', 'delta', 'epsilon', 'zeta']
    const path = join(files, 'words.txt')
    writeFileSync(path, words.join('\n') + '\n')
    const r = await run(['--inputs', path, '--', 'sh', '-c', 'echo "item {} on $PWD" | cut -d" " -f1,2'])
    expect(r.code).toBe(0)
    expect(lines(r.stdout)).toEqual(words.map((w) => `item ${w}`))
    const j = await run(['--json', '--', 'echo', 'n={}'], '1\n2\n')
    expect(j.code).toBe(0)
    const got = lines(j.stdout)
      .map((l) => JSON.parse(l))
      .sort((x, y) => x.index - y.index)
    expect(got).toEqual([
      { index: 0, exitCode: 0, stdout: 'n=1\n', stderr: '' },
      { index: 1, exitCode: 0, stdout: 'n=2\n', stderr: '' },
    ])
  })

  it('appends the input when the command has no {}, and a failing command is a failed task', async () => {
    const r = await run(['--', 'echo', 'x'], 'a\nb\n')
    expect(lines(r.stdout)).toEqual(['x a', 'x b'])
    const f = await run(['--json', '--', 'sh', '-c', 'echo oops >&2; exit {}'], '0\n3\n')
    expect(f.code).toBe(1)
    const got = lines(f.stdout)
      .map((l) => JSON.parse(l))
      .sort((x, y) => x.index - y.index)
    expect(got[0]).toMatchObject({ index: 0, exitCode: 0 })
    expect(got[1]).toMatchObject({ index: 1, exitCode: 3, stdout: '', stderr: 'oops\n' })
    expect(got[1].error).toContain('command exited with code 3')
    expect(f.stderr).toMatch(/1 of 2 tasks failed/)
  })

  it.each([
    [['map', join(files, 'nope.ts'), '--inputs', '-'], '1\n', /module not found: .*nope\.ts/],
    [['map', WORK, '--inputs', '-'], '1\n2\n{oops\n', /stdin line 3 is not JSON/],
    [
      ['map', WORK, '--inputs', join(files, 'missing.jsonl')],
      '',
      /cannot read --inputs .*missing\.jsonl: no such file/,
    ],
    [['map', WORK, '--inputs', '-', '--cpu', 'lots'], '1\n', /--cpu.*invalid/],
    [['map', WORK], '1\n', /required option '--inputs/],
    [['run', '--timeout', 'soon', '--', 'true'], '1\n', /--timeout.*invalid/],
    [['job', 'no-such-job'], '', /no job no-such-job on this node/],
    [['results', 'no-such-job'], '', /no job no-such-job on this node/],
    [['cancel', 'no-such-job'], '', /no job no-such-job on this node/],
  ])('%j is a usage error: exit 2 with one clear line', async (args, stdin, message) => {
    const r = await c.cli(args, stdin)
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(message)
    expect(lines(r.stderr.replace(/\(run with --help for usage\)\n$/, ''))).toHaveLength(1)
  })
})
