/**
 * A hostile victim answering steals. The member advertises ready tasks and answers each steal
 * with two 7 MiB tasks needing a million CPUs, under a new job each time. The thief took
 * whatever came back, with none of the checks a push gets, and since such tasks never start it
 * still had nothing to run and stole again at once: +1,152 MiB in 25 s, still climbing. Now a
 * grant is cut to the `max` asked, tasks that never fit the node or pass the bytes held for
 * their owner are given back at once, and a grant of which nothing stays counts as an empty
 * steal (the thief backs off). Scheduler tests: test/scheduler/authorization.test.ts.
 */
import { readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { capacityTopic, encodeAdvert } from '../../src/protocol/advert/codec.ts'
import {
  registerLeaseProtocol,
  registerResultProtocol,
  registerStealProtocol,
} from '../../src/protocol/index.ts'
import { eventually, TestMesh, type TestNode } from './harness.ts'
import { advertOf, alive, type Member, MiB, member } from './member-peer.ts'

const MESH = 'hostile-grants'
const rssMiB = (pid: number) =>
  Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0) / 1024

describe('a hostile victim granting tasks that never run', () => {
  const mesh = new TestMesh('hostile-grants')
  let thief: TestNode
  let m: Member
  let steals = 0
  const asked: number[] = []
  let leased = 0
  let returned = 0

  beforeAll(async () => {
    thief = await mesh.add('thief', { mesh: MESH, cpus: 1 })
    m = await member(mesh)
    const input = new Uint8Array(7 * MiB).fill(1)
    await registerStealProtocol(m.node, {
      async onStealRequest(_p, req) {
        steals++
        asked.push(req.max)
        const job = `forged-${steals}`
        return {
          batch: {
            jobs: [
              {
                id: job,
                owner: m.peerId,
                work: { kind: 'noop' },
                resources: { cpu: 1e6, gpu: 0, memoryMB: 0 },
                timeoutMs: 60_000,
                maxAttempts: 1,
                retries: 0,
              },
            ],
            tasks: [0, 1].map((index) => ({ job, index, attempt: 0, input, depValues: [] })),
          },
        } as never
      },
      onPush: async () => ({ accepted: 0 }),
    })
    await registerResultProtocol(m.node, {
      async onResults(_p, req) {
        for (const r of req.results) if (r.outcome.status === 'returned') returned++
        return { tasks: req.results.map(({ job, index, attempt }) => ({ job, index, attempt })) }
      },
    })
    await registerLeaseProtocol(m.node, {
      onLease: async (_p, req) => {
        leased++
        void req
        return { drop: [], cancelledJobs: [] }
      },
      onCancel: async () => ({}),
    })
    expect(await m.join(thief.addr)).toBe(true)
    m.node.services.pubsub.subscribe(capacityTopic(MESH))
  }, 90_000)

  afterAll(async () => {
    await m?.stop()
    await mesh.stopAll()
  })

  it('gives back what it can never run, and holds none of its bytes', async () => {
    const pid = thief.proc!.pid!
    const before = rssMiB(pid)
    let seq = Date.now()
    const advertise = () => {
      const ad = advertOf(
        MESH,
        m.peerId,
        { seq: seq++, cpus: 1 },
        {
          slots: 1,
          ready: [{ resources: { cpu: 1, gpu: 0, memoryMB: 0 }, count: 1000 }],
          running: 1,
          meanTaskMs: 1000,
        },
      )
      return m.node.services.pubsub.publish(capacityTopic(MESH), encodeAdvert(ad)).catch(() => {})
    }
    await eventually(
      'the thief to steal from the member',
      async () => {
        await advertise()
        return steals > 0
      },
      30_000,
      500,
    )
    const t0 = Date.now()
    let peak = before
    while (Date.now() - t0 < 25_000 && alive(pid)) {
      await advertise()
      peak = Math.max(peak, rssMiB(pid))
      await new Promise((r) => setTimeout(r, 250))
    }
    const grew = peak - before
    const summary = `${steals} steals answered (asked max ${[...new Set(asked)].join(',')}), ${steals * 2} tasks of 7 MiB needing 1e6 CPUs granted, ${returned} given back, ${leased} leases heard; thief RSS ${before.toFixed(0)} -> ${peak.toFixed(0)} MiB (+${grew.toFixed(0)}), alive=${alive(pid)}`
    expect(alive(pid), summary).toBe(true)
    expect(returned, summary).toBeGreaterThan(0)
    expect(grew, summary).toBeLessThan(250)
  }, 120_000)
})
