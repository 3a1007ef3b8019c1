import { describe, expect, it } from 'vitest'
import { LEASE_PROTOCOL } from '../../../src/protocol/lease/codec.ts'
import { LeaseClient, registerLeaseProtocol } from '../../../src/protocol/lease/handler.ts'
import { FakeRegistrar } from '../fakes.ts'
import { PEER_A, PEER_B } from '../fixtures.ts'

describe('lease protocol', () => {
  it('answers leases and cancels on one stream', async () => {
    const registrar = new FakeRegistrar()
    const cancelled: string[] = []
    await registerLeaseProtocol(registrar, {
      async onLease(peer, req) {
        expect(peer).toBe(PEER_B)
        return { drop: req.holdings.filter((k) => k.attempt < 2), cancelledJobs: ['job-9'] }
      },
      async onCancel(peer, req) {
        cancelled.push(`${peer}:${req.job}`)
        return {}
      },
    })
    const client = new LeaseClient(registrar.opener(LEASE_PROTOCOL, PEER_B))
    const holdings = [
      { job: 'job-1', index: 0, attempt: 1, copy: 1 },
      { job: 'job-1', index: 1, attempt: 2, copy: 3 },
    ]
    const [answer, ack] = await Promise.all([client.lease({ holdings }), client.cancel({ job: 'job-3' })])
    expect(answer).toEqual({ drop: [holdings[0]], cancelledJobs: ['job-9'] })
    expect(ack).toEqual({})
    expect(cancelled).toEqual([`${PEER_B}:job-3`])
    expect(registrar.opened).toBe(1)
    client.close()
  })

  it('refuses to send an invalid lease of ours', async () => {
    const registrar = new FakeRegistrar()
    await registerLeaseProtocol(registrar, {
      onLease: async () => ({ drop: [], cancelledJobs: [] }),
      onCancel: async () => ({}),
    })
    const client = new LeaseClient(registrar.opener(LEASE_PROTOCOL, PEER_A))
    await expect(client.cancel({ job: '' })).rejects.toThrow(/lease\.cancel\.job/)
    expect(registrar.opened).toBe(0)
    client.close()
  })
})
