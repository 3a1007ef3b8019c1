/**
 * Conservation: after the faults (loss, crashes and restarts, leaves, joins,
 * partitions, crashing workers) and the liveness phase, every task of every
 * job has exactly one accepted result: done once, or failed only after its
 * attempts (poison) or because a dependency failed. Nothing is lost, and no
 * checker fired along the way.
 */
import { describe, expect, it } from 'vitest'
import { STRATEGIES } from '../../simulations/core/sim.ts'
import { scenario as faults } from '../../simulations/scenarios/faults.ts'
import { scenario as ownerCrash } from '../../simulations/scenarios/owner-crash.ts'
import type { GridnodeStrategy } from '../../simulations/strategies/gridnode.ts'
import { run, withSpec } from './helpers.ts'

describe('conservation under faults', () => {
  for (const strategy of STRATEGIES) {
    for (const seed of [1, 2]) {
      it(`${strategy}, seed ${seed}: every task accepted exactly once, none lost`, () => {
        const { record, sim } = run(faults, strategy, seed, 16)
        expect(record.violations).toEqual([])
        expect(record.outcome).toBe('ok')
        expect(record.faults.crashes + record.faults.partitions).toBeGreaterThan(0)
        expect(record.metrics.tasksLost).toBe(0)
        for (let g = 0; g < sim.work.total; g++) expect(sim.metrics.accepted[g]).toBe(1)
        for (const j of record.jobs) expect(['done', 'failed']).toContain(j.status)
      })
    }
  }

  it('gridnode: a task fails only after its attempts (poison) or when a dependency failed', () => {
    const flaky = withSpec(faults, (s) => ({
      ...s,
      jobs: s.jobs.map((j) => ({ ...j, crashRate: 0.3, maxAttempts: 2 })),
    }))
    const { record, sim, strategy } = run(flaky, 'gridnode', 5, 12)
    expect(record.outcome).toBe('ok')
    expect(record.metrics.tasksLost).toBe(0)
    expect(record.metrics.tasksFailed).toBeGreaterThan(0)
    const g = strategy as GridnodeStrategy
    for (let gid = 0; gid < sim.work.total; gid++) {
      const r = g.storedResult(gid)
      expect(r).toBeDefined()
      if (r === undefined || r.outcome.status === 'ok') continue
      const job = sim.work.jobs[sim.work.jobOf[gid]]
      const poison = /^poison: .* (\d+) times/.exec(r.outcome.error)
      if (poison !== null) expect(Number(poison[1])).toBeGreaterThanOrEqual(job.spec.maxAttempts)
      else expect(r.outcome.error).toMatch(/^dependency \d+ failed/)
    }
  })

  it('gridnode: owners that crash and restart from their store lose nothing', () => {
    const { record } = run(ownerCrash, 'gridnode', 3, 12)
    expect(record.violations).toEqual([])
    expect(record.outcome).toBe('ok')
    expect(record.metrics.tasksLost).toBe(0)
  })
})
