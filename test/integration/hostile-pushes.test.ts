/**
 * A member pushing its own tasks faster than they run, or tasks that can never run here. The
 * push's checks were that the sender owns the job and that the node's policy takes it: every
 * push of tasks needing a million CPUs was held, queued for ever, inputs and all (a member
 * pushed 826 MiB in 59 pushes; the victim's memory grew by 925 MiB). Now a push of tasks the
 * node could never start is refused, as is one that would take the inputs held for one owner
 * (or all) past a limit (scheduler tests: test/scheduler/authorization.test.ts, "pushes").
 */
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { registerLeaseProtocol, registerResultProtocol, STEAL_PROTOCOL } from '../../src/protocol/index.ts'
import { TestMesh, type TestNode } from './harness.ts'
import { alive, type Member, MiB, member } from './member-peer.ts'

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) / 1024 : 0
}

describe('a member pushing tasks that never run', () => {
  const mesh = new TestMesh('hostile-pushes')
  let victim: TestNode
  let m: Member
  const results: string[] = []

  beforeAll(async () => {
    victim = await mesh.add('victim', { cpus: 1 })
    m = await member(mesh)
    await registerResultProtocol(m.node, {
      async onResults(_p, req) {
        for (const r of req.results) results.push(`${r.job} ${r.outcome.status}`)
        return { tasks: req.results.map(({ job, index, attempt }) => ({ job, index, attempt })) }
      },
    })
    await registerLeaseProtocol(m.node, {
      onLease: async () => ({ drop: [], cancelledJobs: [] }),
      onCancel: async () => ({}),
    })
    expect(await m.join(victim.addr)).toBe(true)
  }, 90_000)

  afterAll(async () => {
    await m?.stop()
    await mesh.stopAll()
  })

  const input = new Uint8Array(7 * MiB).fill(1)
  const push = async (job: string, cpu: number) =>
    (await m.rpc(victim.peerId, STEAL_PROTOCOL, {
      t: 'push',
      batch: {
        jobs: [
          {
            id: job,
            owner: m.peerId,
            work: { kind: 'noop' },
            resources: { cpu, gpu: 0, memoryMB: 0 },
            timeoutMs: 60_000,
            maxAttempts: 1,
            retries: 0,
          },
        ],
        tasks: [0, 1].map((index) => ({ job, index, attempt: 0, input, depValues: [] })),
      },
    })) as { reply?: { t: string; code?: string; message?: string }; closed?: string }

  it('refuses tasks that could never start here, and holds none of their bytes', async () => {
    const pid = victim.proc!.pid!
    const before = rssMiB(pid)
    let refused = 0
    for (let i = 0; i < 40; i++) {
      const r = await push(`never-${i}`, 1e6)
      if (r.reply?.t === 'error' && /this node has 1 slots/.test(r.reply.message ?? '')) refused++
    }
    expect(refused).toBeGreaterThanOrEqual(38) // a stream may close now and then under yamux churn
    expect(alive(pid)).toBe(true)
    // 40 pushes of 14 MiB: held, that was 560 MiB more; refused, what decoding them left behind.
    expect(rssMiB(pid) - before).toBeLessThan(200)
    // Tasks that fit are still taken and run.
    expect((await push('fits', 1)).reply?.t).toBe('push-ack')
    await expect.poll(() => results.filter((r) => r === 'fits ok').length, { timeout: 30_000 }).toBe(2)
  }, 180_000)
})
