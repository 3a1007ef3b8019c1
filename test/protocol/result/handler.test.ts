import { describe, expect, it } from 'vitest'
import { RemoteRequestError } from '../../../src/protocol/errors.ts'
import { RESULT_PROTOCOL } from '../../../src/protocol/result/codec.ts'
import { ResultClient, registerResultProtocol } from '../../../src/protocol/result/handler.ts'
import type { TaskResult } from '../../../src/scheduler/types.ts'
import { FakeRegistrar } from '../fakes.ts'
import { PEER_B, results } from '../fixtures.ts'

describe('result protocol', () => {
  it('delivers results to the owner and returns its acks', async () => {
    const registrar = new FakeRegistrar()
    const stored: Array<{ peer: string; results: TaskResult[] }> = []
    await registerResultProtocol(registrar, {
      async onResults(peer, req) {
        stored.push({ peer, results: req.results })
        return { tasks: req.results.map(({ job, index, attempt }) => ({ job, index, attempt })) }
      },
    })
    const holder = new ResultClient(registrar.opener(RESULT_PROTOCOL, PEER_B))
    const acks = await Promise.all([holder.send({ results: results() }), holder.send({ results: [] })])
    expect(acks[0].tasks).toHaveLength(6)
    expect(acks[0].tasks[4]).toEqual({ job: 'job-2', index: 1, attempt: 3 })
    expect(acks[1]).toEqual({ tasks: [] })
    expect(stored[0]).toEqual({ peer: PEER_B, results: results() })
    expect(registrar.opened).toBe(1)
    holder.close()
  })

  it('turns an owner failure into RemoteRequestError with its code', async () => {
    const registrar = new FakeRegistrar()
    const errors: Error[] = []
    await registerResultProtocol(
      registrar,
      {
        async onResults() {
          throw Object.assign(new Error('database is locked'), { code: 'SQLITE_BUSY' })
        },
      },
      { onError: (_peer, err) => errors.push(err) },
    )
    const holder = new ResultClient(registrar.opener(RESULT_PROTOCOL, PEER_B))
    const err = await holder.send({ results: results() }).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteRequestError)
    expect((err as RemoteRequestError).remoteCode).toBe('SQLITE_BUSY')
    expect(errors.map((e) => e.message)).toEqual(['database is locked'])
    holder.close()
  })
})
