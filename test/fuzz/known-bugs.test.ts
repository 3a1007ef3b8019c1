/**
 * Regression tests for bugs the fuzzers found in src/ (now fixed). A new
 * finding starts here as `it.fails` with its entry in KNOWN_BUGS
 * (test/fuzz/codecs.ts), and becomes `it` once fixed.
 */
import { describe, expect, it } from 'vitest'
import { RemoteProtocolError } from '../../src/errors.ts'
import { stealRequestCodec } from '../../src/protocol/steal/codec.ts'
import { NodeScheduler } from '../../src/scheduler/index.ts'
import type { JobSpec } from '../../src/scheduler/types.ts'
import { PEERS } from './gen.ts'

const fromHex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'))

describe('fuzz: known bugs', () => {
  // {v: 1, t: {toString: 0}} — src/protocol/message.ts checkEnvelope calls String(t) on the
  // decoded map, which throws TypeError ("Cannot convert object to primitive value"). Every
  // messageCodec (steal, result, lease, blob, member, capacity, and their replies) is affected:
  // servers count the stream as "broken" instead of "malformed"; clients get a TypeError.
  it('envelope-string-t: a map as `t` whose toString is not a function is a RemoteProtocolError', () => {
    const bytes = fromHex('a26174a168746f537472696e6700617601')
    expect(() => stealRequestCodec.decode(bytes)).toThrow(RemoteProtocolError)
  })
})

describe('fuzz: known bugs in the scheduler', () => {
  // A member pushes a batch of ITS OWN job whose id equals a job the receiver owns (job ids
  // travel in every stolen batch, so any member can learn them). The holder keys tasks by job
  // id and index alone: the pushed task lands on the owner's own job-1/2 and the owner's
  // custody bookkeeping breaks ("task job-1/2 held under attempt 1, not 0"). Worse, the owner
  // then runs ITS OWN job-1/2 with the member's input and stores that result as its own (checked
  // by hand: input [66,66] pushed, result 66 persisted for 2/1), and the member's task is never
  // reported back. The same holds for two foreign owners using one job id, and for a hostile
  // victim's steal reply.
  it('job-id-collision: a pushed job reusing the id of a job the receiver owns is refused', () => {
    const owner = PEERS[0]
    const member = PEERS[1]
    const s = new NodeScheduler({ self: owner, capacity: { slots: 1, memoryMB: 4096, gpus: [] }, seed: 7 })
    const spec = (o: string): JobSpec => ({
      id: 'job-1',
      owner: o,
      work: { kind: 'noop' },
      resources: { cpu: 1, gpu: 0, memoryMB: 100 },
      timeoutMs: 0,
      maxAttempts: 3,
      retries: 0,
    })
    const tasks = Array.from({ length: 6 }, (_, i) => ({ index: i, input: new Uint8Array([i]), deps: [] }))
    s.handle({ type: 'job-submitted', at: 1000, cause: 'submit', job: spec(owner), tasks })
    s.handle({
      type: 'batch-pushed',
      at: 1001,
      cause: 'push',
      from: member,
      batch: {
        jobs: [spec(member)],
        tasks: [{ job: 'job-1', index: 2, attempt: 1, input: new Uint8Array(0), depValues: [] }],
      },
    })
    expect(() => s.checkInvariants()).not.toThrow()
    expect(s.stats().jobIdCollisions).toBe(1)
  })
})
