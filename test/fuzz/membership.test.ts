/** The member protocol's real server under the stream fuzz: 10,000+ frames. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fuzzMembershipServer } from './membership.ts'
import { trapStrays } from './trap.ts'

const trap = trapStrays()
beforeAll(() => trap.install())
afterAll(() => trap.uninstall())

describe('fuzz: membership server', () => {
  it('member: 10,000+ frames, each answered in order or its stream ended; no stray errors', async () => {
    const tally = await fuzzMembershipServer({ numRuns: 560, perStream: 40 })
    expect(tally.messages).toBeGreaterThanOrEqual(10_000)
    expect(tally.handled).toBeGreaterThan(5000)
    trap.check()
  })
})
