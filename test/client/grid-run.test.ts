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

  it('options that cannot be sent are refused naming where, without their contents (env is not echoed)', async () => {
    const d = await fakeDaemon()
    daemons.push(d)
    const grid = await connect({ dataDir: d.dataDir })
    class Env {
      SECRET_TOKEN = 'hunter2'
    }
    const refused = (env: unknown) =>
      grid.run(['echo'], ['a'], { env: env as Record<string, string> }).id.then(
        () => undefined,
        (err: Error & { code?: string }) => err,
      )
    const byClass = await refused(new Env())
    expect(byClass?.code).toBe('GN_UNSERIALIZABLE')
    expect(byClass?.message).toMatch(/an instance of Env at value\.work\.env/)
    expect(byClass?.message).not.toContain('hunter2')
    const byFunction = await refused({ PATH: '/bin', f: () => 1 })
    expect(byFunction?.message).toMatch(/a function \(f\) at value\.work\.env\.f/)
    expect(d.jobs).toHaveLength(0)
  })
})
