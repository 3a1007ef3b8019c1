/**
 * Decode-only fuzzing of every wire codec (requests a server decodes, replies
 * a client decodes): 10,000 mixed inputs each. See test/fuzz/gen.ts for the mix.
 */
import { describe, expect, it } from 'vitest'
import { CODECS, fuzzDecode, oversized } from './codecs.ts'

const RUNS = 10_000

describe('fuzz: codecs', () => {
  for (const [name, codec] of Object.entries(CODECS)) {
    it(`${name}: ${RUNS} inputs decode to a round-tripping value or throw RemoteProtocolError`, () => {
      const tally = fuzzDecode(codec, { numRuns: RUNS })
      const known = Object.values(tally.known).reduce((a, b) => a + b, 0)
      expect(tally.accepted + tally.rejected + known).toBe(RUNS)
      // The mix reaches both sides of the decoder.
      expect(tally.accepted).toBeGreaterThan(RUNS / 10)
      expect(tally.rejected).toBeGreaterThan(RUNS / 10)
    })

    it(`${name}: oversized messages are refused`, () => {
      oversized(codec)
    })
  }
})
