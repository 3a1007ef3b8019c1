/** A module without the export asked for is refused at submit (exit 2), before any job exists. */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BadSubmitError, connect } from '../../src/client/index.ts'
import { type FakeDaemon, fakeDaemon } from '../client/fake-daemon.ts'
import { runCli } from '../integration/harness.ts'

const daemons: FakeDaemon[] = []
afterEach(() => {
  for (const d of daemons.splice(0)) d.close()
})

async function daemonWithModule(): Promise<{ d: FakeDaemon; mod: string }> {
  const d = await fakeDaemon()
  daemons.push(d)
  const mod = join(d.dataDir, 'work.mjs')
  writeFileSync(mod, 'export function square(x) { return x * x }\nexport const cube = (x) => x ** 3\n')
  return { d, mod }
}

describe('a missing export', () => {
  it('is refused by grid.map() and grid.submit() with the exports the module has, and no job is made', async () => {
    const { d, mod } = await daemonWithModule()
    const grid = await connect({ dataDir: d.dataDir })
    const job = grid.map(mod, 'sqaure', [1, 2])
    await expect(job.id).rejects.toBeInstanceOf(BadSubmitError)
    await expect(job.id).rejects.toThrow(`${mod} has no export named "sqaure" (its exports: cube, square)`)
    await expect(grid.submit(mod, 'default', [1])).rejects.toBeInstanceOf(BadSubmitError)
    expect(d.jobs).toEqual([])
    await expect(grid.map(mod, 'square', [3]).id).resolves.toBe('job-1')
  })

  it('makes gridnode map exit 2 with one line', async () => {
    const { d, mod } = await daemonWithModule()
    const r = await runCli(['map', mod, 'sqaure', '--inputs', '-', '--data-dir', d.dataDir], '1\n')
    expect(r.code).toBe(2)
    expect(r.stderr.trim().split('\n')).toEqual([
      `gridnode: ${mod} has no export named "sqaure" (its exports: cube, square)`,
    ])
    expect(d.jobs).toEqual([])
  })
})
