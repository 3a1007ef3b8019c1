/** A job's event stream that breaks mid-job (the owner daemon died): one clear error, the results so far kept. */
import { afterEach, describe, expect, it } from 'vitest'
import { connect, JobStreamLostError } from '../../src/client/index.ts'
import { encodeValue } from '../../src/executor/values.ts'
import { type FakeDaemon, fakeDaemon, sse } from './fake-daemon.ts'

const daemons: FakeDaemon[] = []
afterEach(() => {
  for (const d of daemons.splice(0)) d.close()
})

describe('a job whose daemon goes away', () => {
  it('ends with JobStreamLostError naming the job and `gridnode results <id> --wait`, not a fetch stack', async () => {
    const d = await fakeDaemon()
    daemons.push(d)
    d.events = (id, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      sse(res, 'progress', { job: id, total: 2, done: 0, failed: 0, running: 2, nodes: 0 })
      const value = Buffer.from(encodeValue(7)).toString('base64')
      sse(res, 'results', [
        { index: 0, ok: true, value, error: null, stack: null, ranOn: 'p', durationMs: 1 },
      ])
      setTimeout(() => res.socket?.destroy(), 50)
    }
    const grid = await connect({ dataDir: d.dataDir })
    const job = grid.attach('j-1')
    const seen: unknown[] = []
    let err: unknown
    try {
      for await (const r of job) seen.push(r.value)
    } catch (e) {
      err = e
    }
    expect(seen).toEqual([7])
    expect(err).toBeInstanceOf(JobStreamLostError)
    const message = (err as Error).message
    expect(message).toContain('job j-1: the daemon went away')
    expect(message).toContain('`gridnode results j-1 --wait`')
    expect(message).not.toMatch(/terminated|TypeError/)
    await expect(job.done()).rejects.toBeInstanceOf(JobStreamLostError)
  })
})
