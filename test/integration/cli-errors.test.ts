/** Every client command without a daemon, and every bad flag, gets one clear line and the right exit code. */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { runCli } from './harness.ts'

const empty = mkdtempSync(join(tmpdir(), 'gridnode-nodaemon-'))

describe('the CLI', () => {
  it.each([['status'], ['peers'], ['status', '--json']])(
    '%s with no daemon: one line naming the data dir, exit 3',
    async (...args) => {
      const r = await runCli([...args, '--data-dir', empty])
      expect(r.code).toBe(3)
      expect(r.stdout).toBe('')
      const lines = r.stderr.trim().split('\n')
      expect(lines).toHaveLength(1)
      expect(lines[0]).toContain(empty)
      expect(lines[0]).toContain('gridnode start')
    },
  )

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
  ])('%j is a usage error: exit 2 with a clear message', async (args, message) => {
    const r = await runCli([...args, '--data-dir', empty])
    expect(r.code).toBe(2)
    expect(r.stderr).toMatch(message)
  })
})
