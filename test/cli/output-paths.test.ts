/**
 * Output paths and globs of `gridnode map` and `run`: an --out or --output-dir that cannot be
 * written is refused before anything is submitted (exit 2), and an --output glob no task's
 * files matched is said on stderr once the job has ended.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeValue } from '../../src/executor/values.ts'
import { type FakeDaemon, fakeDaemon, sse } from '../client/fake-daemon.ts'
import { runCli } from '../integration/harness.ts'

const daemons: FakeDaemon[] = []
afterEach(() => {
  for (const d of daemons.splice(0)) d.close()
})

async function daemon(): Promise<FakeDaemon & { mod: string }> {
  const d = Object.assign(await fakeDaemon(), { mod: '' })
  daemons.push(d)
  d.mod = join(d.dataDir, 'work.mjs')
  writeFileSync(d.mod, 'export function square(x) { return x * x }\n')
  return d
}

describe('an output path that cannot be written', () => {
  it('--out in a missing directory: exit 2, one line, and no job is submitted', async () => {
    const d = await daemon()
    const out = join(d.dataDir, 'nodir', 'x.txt')
    const map = await runCli(
      ['map', d.mod, 'square', '--inputs', '-', '--out', out, '--data-dir', d.dataDir],
      '1\n2\n',
    )
    expect(map.code).toBe(2)
    expect(map.stderr.trim().split('\n')).toEqual([
      `gridnode: cannot write --out ${out}: directory ${join(d.dataDir, 'nodir')} does not exist`,
    ])
    const run = await runCli(
      ['run', '--inputs', '-', '--out', out, '--data-dir', d.dataDir, '--', 'true'],
      '1\n',
    )
    expect(run.code).toBe(2)
    expect(run.stderr.trim().split('\n')).toEqual([
      `gridnode: cannot write --out ${out}: directory ${join(d.dataDir, 'nodir')} does not exist`,
    ])
    expect(d.jobs).toEqual([])
  })

  it('--out that is a directory: exit 2 before submitting', async () => {
    const d = await daemon()
    const r = await runCli(
      ['map', d.mod, 'square', '--inputs', '-', '--out', d.dataDir, '--data-dir', d.dataDir],
      '1\n',
    )
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe(`gridnode: cannot write --out ${d.dataDir}: it is a directory`)
    expect(d.jobs).toEqual([])
  })

  it('--output-dir under a file: exit 2 before submitting', async () => {
    const d = await daemon()
    const file = join(d.dataDir, 'a-file')
    writeFileSync(file, '')
    const dir = join(file, 'out-{}')
    const r = await runCli(
      [
        'run',
        '--inputs',
        '-',
        '--output',
        '*.txt',
        '--output-dir',
        dir,
        '--data-dir',
        d.dataDir,
        '--',
        'true',
      ],
      '1\n',
    )
    expect(r.code).toBe(2)
    expect(r.stderr.trim()).toBe(`gridnode: cannot write --output-dir ${dir}: ${file} is not a directory`)
    expect(d.jobs).toEqual([])
  })

  it('a writable --out and a new --output-dir pass', async () => {
    const d = await daemon()
    mkdirSync(join(d.dataDir, 'res'))
    const out = join(d.dataDir, 'res', 'x.txt')
    const r = await runCli(
      ['map', d.mod, 'square', '--inputs', '-', '--out', out, '--data-dir', d.dataDir],
      '',
    )
    expect(r).toMatchObject({ code: 0, stderr: '' })
    expect(readFileSync(out, 'utf8')).toBe('')
    const run = await runCli(
      [
        'run',
        '--inputs',
        '-',
        '--output',
        '*',
        '--output-dir',
        join(d.dataDir, 'new', '{}'),
        '--data-dir',
        d.dataDir,
        '--',
        'true',
      ],
      '',
    )
    expect(run).toMatchObject({ code: 0, stderr: '' })
    expect(d.jobs).toHaveLength(2)
  })
})

describe('an --output glob that matched nothing', () => {
  const ok = Buffer.from(encodeValue({ exitCode: 0, stdout: '', stderr: '' })).toString('base64')
  const LOG = { name: 'a.log', size: 2, sha256: 'b'.repeat(64) }

  async function finishedJob(failed = false): Promise<FakeDaemon> {
    const d = await daemon()
    d.events = (id, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const result = (index: number, outputs?: unknown[]) => ({
        index,
        ok: !failed,
        value: failed ? null : ok,
        error: failed ? 'command exited with code 1' : null,
        stack: null,
        ranOn: 'self',
        durationMs: 1,
        ...(outputs ? { outputs } : {}),
      })
      sse(res, 'results', [result(0, failed ? undefined : [LOG]), result(1)])
      const n = failed ? { done: 0, failed: 2 } : { done: 2, failed: 0 }
      sse(res, 'finished', {
        status: failed ? 'failed' : 'done',
        job: id,
        total: 2,
        ...n,
        running: 0,
        nodes: 1,
      })
      res.end()
    }
    d.other = (req, res) => {
      if (req.method !== 'GET' || !req.url?.startsWith('/v1/files/')) return false
      res.writeHead(200, { 'content-type': 'application/octet-stream' })
      res.end('ok')
      return true
    }
    return d
  }

  const args = (d: FakeDaemon, ...more: string[]) => [
    'run',
    '--inputs',
    '-',
    '--output',
    'nomatch*.txt',
    '--output',
    '*.log',
    '--output-dir',
    join(d.dataDir, 'same'),
    '--data-dir',
    d.dataDir,
    ...more,
    '--',
    'true',
  ]

  it('is said on stderr, once per glob; the job still succeeds', async () => {
    const d = await finishedJob()
    const r = await runCli(args(d), '1\n2\n')
    expect(r.stderr.trim().split('\n')).toEqual([
      "gridnode: no task produced a file matching --output 'nomatch*.txt'",
    ])
    expect(r.code).toBe(0)
    expect(existsSync(join(d.dataDir, 'same', 'a.log'))).toBe(true)
  })

  it('is said on stderr in --json mode too, never on stdout', async () => {
    const d = await finishedJob()
    const r = await runCli(args(d, '--json'), '1\n2\n')
    expect(r.stderr.trim()).toBe("gridnode: no task produced a file matching --output 'nomatch*.txt'")
    for (const line of r.stdout.trim().split('\n')) expect(JSON.parse(line)).toHaveProperty('index')
    expect(r.code).toBe(0)
  })

  it('is not said when every task failed (their failures say enough)', async () => {
    const d = await finishedJob(true)
    const r = await runCli(args(d), '1\n2\n')
    expect(r.code).toBe(1)
    expect(r.stderr).not.toContain('no task produced')
  })
})
