/** Every client command without a daemon, and every bad flag, gets one clear line and the right exit code. */
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runCli } from './harness.ts'

const empty = mkdtempSync(join(tmpdir(), 'gridnode-nodaemon-'))
const fixture = fileURLToPath(new URL('./fixtures/cli-work.ts', import.meta.url))

describe('the CLI', () => {
  it.each([
    ['status'],
    ['peers'],
    ['status', '--json'],
    ['jobs'],
    ['jobs', '--json'],
    ['job', 'x'],
    ['results', 'x'],
    ['cancel', 'x'],
    ['map', fixture, '--inputs', '-'],
    ['run', '--inputs', '-', '--data-dir', empty, '--', 'echo'],
  ])('%s with no daemon: one line naming the data dir, exit 3', async (...args) => {
    const r = await runCli(args.includes('--data-dir') ? args : [...args, '--data-dir', empty], '1\n')
    expect(r.code).toBe(3)
    expect(r.stdout).toBe('')
    const lines = r.stderr.trim().split('\n')
    expect(lines).toHaveLength(1)
    expect(lines[0]).toContain(empty)
    expect(lines[0]).toContain('gridnode start')
  })

  it('honours GRIDNODE_HOME when --data-dir is absent', async () => {
    const r = await runCli(['peers'], undefined, { GRIDNODE_HOME: empty })
    expect(r.code).toBe(3)
    expect(r.stderr).toContain(empty)
  })

  it.each([
    [['start', '--cpus', 'many'], /--cpus/],
    [['start', '--cpus', '0'], /--cpus/],
    [['start', '--mesh', 'a b'], /--mesh/],
    [['start', '--gpus', 'all'], /--gpus/],
    [['start', '--listen', 'nonsense'], /--listen/],
    [['status', '--frobnicate'], /unknown option/],
    [['frobnicate'], /unknown command/],
    [['map', '--inputs', '-'], /missing required argument 'module'/],
    [['run', '--inputs', '-'], /missing required argument 'command'/],
    [['jobs', '--limit', 'x'], /--limit.*invalid/],
  ])('%j is a usage error: exit 2 with a clear message', async (args, message) => {
    const r = await runCli([...args, '--data-dir', empty])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
  })

  const LOOPBACK = ['--no-mdns', '--listen', '/ip4/127.0.0.1/tcp/0']
  it.each([
    [[...LOOPBACK, '--max-cpu-share', '2'], /maxCpuShare "2"/],
    [[...LOOPBACK, '--hours', '25-3'], /hours/],
    [[...LOOPBACK, '--gpus', 'foo'], /--gpus/],
    [['--no-mdns', '--listen', '/ip4/127.0.0.1/udp/0'], /listen|address/i],
  ])(
    'a first start refused for %j leaves no mesh in the data dir (a --join there still works)',
    async (flags, message) => {
      // Before, the new mesh's keys were written first: the dir belonged to a mesh nobody could join.
      const parent = mkdtempSync(join(tmpdir(), 'gridnode-badstart-'))
      const fresh = join(parent, 'node')
      const r = await runCli(['start', '--data-dir', fresh, ...flags])
      expect(r.code).not.toBe(0)
      expect(r.stderr).toMatch(message)
      expect(existsSync(fresh)).toBe(false)
      // A data dir that was there keeps what it had, and no file that ties it to a mesh.
      const kept = join(parent, 'kept')
      mkdirSync(kept)
      writeFileSync(join(kept, 'config.json'), '{"cpus": 1}')
      const again = await runCli(['start', '--data-dir', kept, ...flags])
      expect(again.code).not.toBe(0)
      const left = readdirSync(kept)
      expect(left).toContain('config.json')
      for (const f of ['identity.key', 'swarm.key', 'mesh.json', 'mesh.key', 'membership.cert'])
        expect(left).not.toContain(f)
      rmSync(parent, { recursive: true, force: true })
    },
  )

  it.each([
    [['demo', '--nodes', '0'], /--nodes.*invalid/],
    [['demo', '--nodes', '99'], /--nodes 99: at most 16/],
    [['demo', '--tasks', 'x'], /--tasks.*invalid/],
  ])('%j is a usage error before any daemon starts: exit 2', async (args, message) => {
    const r = await runCli(args)
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
  })
})
