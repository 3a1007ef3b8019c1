/**
 * Hostile peer messages, decoded by the real codecs, fed into a real
 * NodeScheduler owning a job, the way the driver feeds them: invariants hold
 * after every event, and the job still finishes with every task accounted for.
 */
import { describe, expect, it } from 'vitest'
import { fuzzScheduler } from './scheduler.ts'

describe('fuzz: scheduler behind the codecs', () => {
  it('no crash, no hang, no task lost', () => {
    const tally = fuzzScheduler({ numRuns: 600, steps: 40 })
    expect(tally.messages).toBeGreaterThanOrEqual(10_000)
    expect(tally.fed).toBeGreaterThan(tally.messages / 3)
  })
})
