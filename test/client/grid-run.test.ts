/** grid.run() as submitted to the daemon (a fake API records the job). */
import { afterEach, describe, expect, it } from 'vitest'
import { connect } from '../../src/client/index.ts'
import { decodeValue } from '../../src/executor/values.ts'
import { type FakeDaemon, fakeDaemon } from './fake-daemon.ts'

const daemons: FakeDaemon[] = []
afterEach(() => {
  for (const d of daemons.splice(0)) d.close()
})

describe('grid.run()', () => {
  it('adds the input as the last argument when argv has no {}, as the CLI does', async () => {
    const d = await fakeDaemon()
    daemons.push(d)
    const grid = await connect({ dataDir: d.dataDir })
    await grid.run(['echo'], ['a', 'b']).id
    await grid.run(['echo', '-n', '{}.txt'], ['c']).id
    const [plain, braced] = d.jobs.map((j) => j.body.work as { argv: string[] })
    expect(plain.argv).toEqual(['echo', '{}'])
    expect(braced.argv).toEqual(['echo', '-n', '{}.txt'])
    const inputs = (d.jobs[0].body.tasks as Array<{ input: Uint8Array }>).map((t) => decodeValue(t.input))
    expect(inputs).toEqual(['a', 'b'])
  })
})
