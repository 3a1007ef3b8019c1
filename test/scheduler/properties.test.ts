/**
 * Property tests on an in-memory mesh (test/fakes/sim-net.ts): 3-6 real
 * NodeSchedulers, reordered, duplicated and lost messages, node crashes and
 * owner restarts from their store, task errors and worker crashes; then a
 * fault-free liveness phase. Checkers run after every step; at the end every
 * task of every job is persisted exactly once, failures are justified, and
 * every job finished once.
 */
import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import { leasesAfterHandBack, SimNet, type SimOptions } from '../fakes/sim-net.ts'

/**
 * CI runs the sizes below. GRIDNODE_PROPERTY_SCALE=n runs n times as many cases (a soak: each
 * test gets n times the time), GRIDNODE_PROPERTY_SEED=s fixes fast-check's seed (chunks of a
 * soak run side by side with different seeds).
 */
const SCALE = Math.max(1, Number(process.env.GRIDNODE_PROPERTY_SCALE ?? 1) || 1)
const SEED = process.env.GRIDNODE_PROPERTY_SEED
const runs = (numRuns: number) => ({
  numRuns: Math.round(numRuns * SCALE),
  ...(SEED === undefined ? {} : { seed: Number(SEED) }),
})
const TIMEOUT_MS = 60_000 * SCALE

const options = (faults: boolean): fc.Arbitrary<SimOptions> =>
  fc.record({
    seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
    nodes: fc.integer({ min: 3, max: 6 }),
    owners: fc.integer({ min: 1, max: 3 }),
    jobsPerOwner: fc.integer({ min: 1, max: 3 }),
    maxTasks: fc.integer({ min: 1, max: 40 }),
    depRate: fc.double({ min: 0, max: 0.5, noNaN: true }),
    lossRate: faults ? fc.double({ min: 0, max: 0.3, noNaN: true }) : fc.constant(0),
    dupRate: faults ? fc.double({ min: 0, max: 0.3, noNaN: true }) : fc.constant(0),
    crashes: faults ? fc.integer({ min: 0, max: 4 }) : fc.constant(0),
    threwRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
    crashRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
    rejectRate: fc.double({ min: 0, max: 0.05, noNaN: true }),
    cancelRate: fc.double({ min: 0, max: 0.2, noNaN: true }),
    gpus: fc.boolean(),
    tiny: fc.boolean(),
    faultMs: fc.integer({ min: 200, max: 3000 }),
    stepBudget: fc.constant(400_000),
    // Both batch sizes a thief may use for long tasks: the default and the other one.
    prefetchFactor: fc.constantFrom(1, 2),
    // Tiny tasks handed on from thief to thief (0) as well as kept where they were sent (the default).
    handOnMinMs: fc.constantFrom(0, 1),
  })

function check(o: SimOptions) {
  const r = new SimNet(o).run()
  expect(r.violations.slice(0, 5)).toEqual([])
  expect(r.finished).toBe(r.jobs.size)
  return r
}

describe('mesh properties', () => {
  test(
    'under faults: every task persisted exactly once, no task lost, every job finished',
    () => {
      fc.assert(
        fc.property(options(true), (o) => {
          check(o)
        }),
        runs(400),
      )
    },
    TIMEOUT_MS,
  )

  test(
    'without faults: failures are exactly the exhausted retries, rejections and poison',
    () => {
      fc.assert(
        fc.property(options(false), (o) => {
          check(o)
        }),
        runs(200),
      )
    },
    TIMEOUT_MS,
  )

  /** The fault-free mesh of the prefetch-1 lease gap: 5 nodes, one owner of 3 jobs, tiny tasks. */
  const LEASE_GAP: SimOptions = {
    seed: 0,
    nodes: 5,
    owners: 1,
    jobsPerOwner: 3,
    maxTasks: 34,
    depRate: 0,
    lossRate: 0,
    dupRate: 0,
    crashes: 0,
    threwRate: 0,
    crashRate: 0,
    rejectRate: 0,
    cancelRate: 0,
    gpus: false,
    tiny: true,
    faultMs: 600,
    stepBudget: 400_000,
    prefetchFactor: 1,
    // Found when tasks under 6 ms were fed two per slot: the seeds keep that, so their paths stay put.
    pipelineTaskMs: 6,
  }

  test('regression, prefetchFactor 1, seed 155964083: a lease sent before a holder handed tasks back to their owner cannot claim them', () => {
    // n0 pushes n0-j1/2.. to n4, steals 10.. back from n4, and n4's lease sent at the push
    // (path [n4]) arrives after: it claimed task 15 out of n0's queue, which then waited for
    // leases n4 never sent and failed as poison ("lease expired: holder n4 silent for 600 ms").
    check({ ...LEASE_GAP, seed: 155964083 })
    // The same gap, found among the seeds next to it (n0-j0/20, holder n4).
    check({ ...LEASE_GAP, seed: 155964720, faultMs: 2120 })
  })

  test('regression, the same gap on seeds that still reach it: a lease naming tasks the owner stole back arrives after the hand-back and claims nothing', () => {
    // The two seeds above stopped producing that lease once the scheduler's choices moved
    // (tasks under 6 ms fed ahead, leases naming the copy): n0 no longer pushes those tasks.
    // These do today, and the test says so, so a seed that drifts off the path fails here.
    const gap: SimOptions = { ...LEASE_GAP, log: true }
    for (const seed of [155964054, 155964118, 155964190, 155964471]) {
      const r = check({ ...gap, seed })
      expect(leasesAfterHandBack(r.log, 'n0'), `seed ${seed}`).not.toEqual([])
    }
  })

  test('regression, seed 437236379 under faults: an ack is checked only for the results it acks', () => {
    // After an owner restart n0 reran n0-j2/6 itself and refused n2's late result of the old
    // attempt, while acking n2's other result in the same message: sim-net's checker took every
    // result of the message for acked and reported "acked before persisted" (a false alarm).
    const r = check({
      seed: 437236379,
      nodes: 3,
      owners: 2,
      jobsPerOwner: 3,
      maxTasks: 20,
      depRate: 0.2696982998168096,
      lossRate: 0.1830944213317707,
      dupRate: 0.04995295596309006,
      crashes: 3,
      threwRate: 0.059677653247490525,
      crashRate: 0.06277214214205742,
      rejectRate: 0.03693296748679131,
      cancelRate: 0.06640293947421015,
      gpus: false,
      tiny: false,
      faultMs: 2604,
      stepBudget: 400_000,
      prefetchFactor: 2,
      pipelineTaskMs: 6,
      log: true,
    })
    expect(partialAcks(r.log)).toBeGreaterThan(0)
  })

  test(
    'determinism: one seed, one history',
    () => {
      fc.assert(
        fc.property(options(true), (o) => {
          const a = new SimNet({ ...o, log: true }).run()
          const b = new SimNet({ ...o, log: true }).run()
          expect(b.log.length).toBe(a.log.length)
          expect(b.log).toEqual(a.log)
        }),
        runs(25),
      )
    },
    TIMEOUT_MS,
  )

  test('a larger mesh converges too', () => {
    const r = new SimNet({
      seed: 12345,
      nodes: 6,
      owners: 6,
      jobsPerOwner: 3,
      maxTasks: 120,
      depRate: 0.3,
      lossRate: 0.2,
      dupRate: 0.2,
      crashes: 6,
      threwRate: 0.05,
      crashRate: 0.05,
      rejectRate: 0.01,
      cancelRate: 0.1,
      gpus: true,
      tiny: true,
      faultMs: 4000,
      stepBudget: 1_000_000,
    }).run()
    expect(r.violations).toEqual([])
    expect(r.stats.tasksRun).toBeGreaterThan(100)
    expect(r.stats.stealsGranted + r.stats.pushes).toBeGreaterThan(0)
  })
})

/** Results messages an owner acked only in part (it refused some of their results), from a run's log. */
function partialAcks(log: readonly string[]): number {
  let n = 0
  let results = new Map<string, number>()
  for (const line of log) {
    const m = /^\S+ (\S+) (<- )?(\{.*)$/.exec(line)
    if (m === null) continue
    const msg = JSON.parse(m[3]) as { type: string; results?: unknown[]; tasks?: unknown[] }
    if (m[2] !== undefined) {
      results = new Map()
      if (msg.type === 'results-received') results.set(m[1], msg.results?.length ?? 0)
    } else if (msg.type === 'ack-results' && (msg.tasks?.length ?? 0) < (results.get(m[1]) ?? 0)) n++
  }
  return n
}
