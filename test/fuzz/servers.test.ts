/**
 * The real protocol servers under fuzz, over in-memory stream pairs: at least
 * 10,000 generated frames per protocol (pipelined, many per stream). See
 * test/fuzz/servers.ts for the properties.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { fuzzBlobServer, fuzzRpcServer, RPC_TARGETS } from './servers.ts'
import { trapStrays } from './trap.ts'

const MESSAGES = 10_000
const trap = trapStrays()
beforeAll(() => trap.install())
afterAll(() => trap.uninstall())

describe('fuzz: protocol servers', () => {
  for (const target of Object.values(RPC_TARGETS)) {
    it(`${target.name}: ${MESSAGES}+ frames, each answered in order or its stream ended; no stray errors`, async () => {
      const tally = await fuzzRpcServer(target, { numRuns: 560, perStream: 40 })
      expect(tally.messages).toBeGreaterThanOrEqual(MESSAGES)
      expect(tally.handled).toBeGreaterThan(MESSAGES / 2)
      expect(tally.aborted).toBeGreaterThan(0)
      trap.check()
    })
  }

  it(`steal with the default rate limits: floods are refused or closed, never crash`, async () => {
    const tally = await fuzzRpcServer(RPC_TARGETS.steal, { numRuns: 60, perStream: 200, rateLimits: {} })
    expect(tally.messages).toBeGreaterThan(1000)
    trap.check()
  })

  it(`blob: ${MESSAGES}+ requests, one stream each; answers hash-correct, bad requests aborted`, async () => {
    const tally = await fuzzBlobServer({ numRuns: 1600, parallel: 12 })
    expect(tally.messages).toBeGreaterThanOrEqual(MESSAGES)
    expect(tally.replies).toBeGreaterThan(MESSAGES / 4)
    trap.check()
  })
})
