/** An empty input list is an empty job that succeeds, not a usage error. */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { type FakeDaemon, fakeDaemon } from '../client/fake-daemon.ts'
import { runCli } from '../integration/harness.ts'

const daemons: FakeDaemon[] = []
afterEach(() => {
  for (const d of daemons.splice(0)) d.close()
})

describe('no inputs', () => {
  it('gridnode map and run submit an empty job, print nothing and exit 0', async () => {
    const d = await fakeDaemon()
    daemons.push(d)
    const mod = join(d.dataDir, 'work.mjs')
    writeFileSync(mod, 'export default (x) => x\n')
    const map = await runCli(['map', mod, '--inputs', '-', '--data-dir', d.dataDir], '\n\n')
    expect(map).toMatchObject({ code: 0, stdout: '' })
    expect(map.stderr).toBe('')
    const run = await runCli(['run', '--inputs', '-', '--data-dir', d.dataDir, '--', 'echo'], '')
    expect(run).toMatchObject({ code: 0, stdout: '', stderr: '' })
    expect(d.jobs.map((j) => (j.body.tasks as unknown[]).length)).toEqual([0, 0])
  })
})
