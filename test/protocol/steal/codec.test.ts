import { encode } from 'cborg'
import { describe, expect, it } from 'vitest'
import { MAX_COMMAND_OUTPUT_BYTES } from '../../../src/domain/types.ts'
import { LocalProtocolError } from '../../../src/errors.ts'
import { MAX_VALUE_BYTES } from '../../../src/protocol/schemas.ts'
import {
  STEAL_MAX_MESSAGE_BYTES,
  type StealProtocolReply,
  type StealProtocolRequest,
  stealReplyCodec,
  stealReplyMatches,
  stealRequestCodec,
} from '../../../src/protocol/steal/codec.ts'
import { rejected } from '../codec-helpers.ts'
import { at, batch, bytesOf, jobSpec, task, wireObject } from '../fixtures.ts'

describe('steal codec', () => {
  it('round-trips requests and replies', () => {
    const requests: StealProtocolRequest[] = [
      { t: 'steal', free: { cpu: 3.5, gpu: 1, memoryMB: 4096 }, max: 8 },
      { t: 'push', batch: batch(5) },
      { t: 'push', batch: { jobs: [], tasks: [] } },
    ]
    for (const r of requests) expect(stealRequestCodec.decode(stealRequestCodec.encode(r))).toEqual(r)
    const replies: Array<StealProtocolReply | { t: 'error'; code: string; message: string }> = [
      { t: 'steal-reply', batch: batch(3) },
      { t: 'steal-reply', batch: { jobs: [], tasks: [] } },
      { t: 'push-ack', accepted: 2 },
      { t: 'error', code: 'GN_X', message: 'no' },
    ]
    for (const r of replies) expect(stealReplyCodec.decode(stealReplyCodec.encode(r))).toEqual(r)
  })

  it('keeps directions apart', () => {
    const reply = stealReplyCodec.encode({ t: 'push-ack', accepted: 1 })
    expect(() => stealRequestCodec.decode(reply)).toThrow(/steal\.t: unknown message type "push-ack"/)
    const req = stealRequestCodec.encode({ t: 'steal', free: { cpu: 1, gpu: 0, memoryMB: 1 }, max: 1 })
    expect(() => stealReplyCodec.decode(req)).toThrow(/steal\.t/)
    expect(stealReplyMatches({ t: 'push', batch: batch(0) }, { t: 'steal-reply', batch: batch(0) })).toBe(
      false,
    )
  })

  it('rejects malformed steal requests', () => {
    const good = wireObject({ t: 'steal', free: { cpu: 1, gpu: 0, memoryMB: 512 }, max: 4 })
    const edits: Array<[(w: Record<string, unknown>) => void, RegExp]> = [
      [(w) => (at(w, 'free').gpu = 0.5), /steal\.steal\.free\.gpu: expected an integer/],
      [(w) => (at(w, 'free').cpu = -1), /steal\.steal\.free\.cpu/],
      [(w) => (at(w, 'free').memoryMB = 2 ** 53), /malformed CBOR|steal\.free\.memoryMB/],
      [(w) => (w.max = -4), /steal\.steal\.max/],
      [(w) => (w.max = 1e9), /steal\.steal\.max: expected at most/],
      [(w) => delete w.free, /steal\.steal\.free: missing/],
      [(w) => (w.free = [1, 0, 512]), /steal\.steal\.free: expected a map/],
      [(w) => (w.v = 0), /steal\.v/],
    ]
    for (const [edit, message] of edits) {
      const w = structuredClone(good)
      edit(w)
      expect(rejected(stealRequestCodec.decode, w)).toMatch(message)
    }
  })

  it('rejects malformed batches, naming the field', () => {
    const good = wireObject({ t: 'push', batch: batch(3) })
    const edits: Array<[(w: Record<string, unknown>) => void, RegExp]> = [
      [
        (w) => (at(w, 'batch.tasks.0').input = 'text'),
        /steal\.push\.batch\.tasks\[0\]\.input: expected bytes/,
      ],
      [(w) => (at(w, 'batch.tasks.1').attempt = -1), /steal\.push\.batch\.tasks\[1\]\.attempt/],
      [(w) => (at(w, 'batch.tasks.1').depValues = [1]), /steal\.push\.batch\.tasks\[1\]\.depValues\[0\]/],
      [
        (w) => (at(w, 'batch.tasks.0').job = 'job-9'),
        /steal\.push\.batch\.tasks\[0\]\.job: job not in batch\.jobs/,
      ],
      [
        (w) => (at(w, 'batch.tasks.0').job = 'j'.repeat(129)),
        /steal\.push\.batch\.tasks\[0\]\.job: string longer/,
      ],
      [(w) => (at(w, 'batch.tasks.0').costHintMs = -5), /costHintMs/],
      [(w) => (at(w, 'batch.jobs.1').id = 'job-1'), /steal\.push\.batch\.jobs\[1\]\.id: duplicate job/],
      [
        (w) => (at(w, 'batch.jobs.0.work').kind = 'python'),
        /steal\.push\.batch\.jobs\[0\]\.work\.kind: expected one of/,
      ],
      [(w) => (at(w, 'batch.jobs.0.work').call = 'reduce'), /steal\.push\.batch\.jobs\[0\]\.work\.call/],
      [
        (w) => (at(w, 'batch.jobs.1.work').argv = ['ok', 7]),
        /steal\.push\.batch\.jobs\[1\]\.work\.argv\[1\]/,
      ],
      [(w) => (at(w, 'batch.jobs.1.work').env = { A: 1 }), /steal\.push\.batch\.jobs\[1\]\.work\.env\.A/],
      [
        (w) => (at(w, 'batch.jobs.2.work').extra = true),
        /steal\.push\.batch\.jobs\[2\]\.work: unexpected field/,
      ],
      [(w) => (at(w, 'batch.jobs.0').maxAttempts = 'three'), /steal\.push\.batch\.jobs\[0\]\.maxAttempts/],
      [(w) => (at(w, 'batch.jobs.0').owner = ''), /steal\.push\.batch\.jobs\[0\]\.owner/],
      [(w) => (at(w, 'batch').tasks = {}), /steal\.push\.batch\.tasks: expected an array/],
      [(w) => (w.batch = null), /steal\.push\.batch: expected a map/],
    ]
    for (const [edit, message] of edits) {
      const w = structuredClone(good)
      edit(w)
      expect(rejected(stealRequestCodec.decode, w)).toMatch(message)
    }
  })

  it('caps task inputs at 8 MiB and the message at 16 MiB', () => {
    const big = { jobs: [jobSpec()], tasks: [task('job-1', 0, { input: new Uint8Array(MAX_VALUE_BYTES) })] }
    const decoded = stealRequestCodec.decode(stealRequestCodec.encode({ t: 'push', batch: big }))
    expect(decoded.t === 'push' && decoded.batch.tasks[0].input.byteLength).toBe(MAX_VALUE_BYTES)
    const tooBig = wireObject({
      t: 'push',
      batch: { jobs: [jobSpec()], tasks: [task('job-1', 0, { input: new Uint8Array(MAX_VALUE_BYTES + 1) })] },
    })
    expect(rejected(stealRequestCodec.decode, tooBig)).toMatch(
      /steal\.push\.batch\.tasks\[0\]\.input: byte string longer than 8388608/,
    )
    const tooMany = {
      jobs: [jobSpec()],
      tasks: [0, 1, 2].map((i) => task('job-1', i, { input: new Uint8Array(6 * 1024 * 1024) })),
    }
    expect(() => stealRequestCodec.encode({ t: 'push', batch: tooMany })).toThrow(LocalProtocolError)
    expect(() => stealRequestCodec.decode(new Uint8Array(STEAL_MAX_MESSAGE_BYTES + 1))).toThrow(/exceeds/)
  })

  it("clamps a command job's stdout cap to what a node keeps, rather than refusing its message", () => {
    // A job stored before the cap (or from an older peer) asking for more: refusing it failed the
    // whole message, every steal of its tasks (found by a review).
    const w = wireObject({ t: 'push', batch: batch(2) })
    at(w, 'batch.jobs.1.work').stdoutMaxBytes = 2 ** 31
    const decoded = stealRequestCodec.decode(encode(w))
    const work = decoded.t === 'push' ? decoded.batch.jobs[1].work : undefined
    expect(work?.kind === 'command' && work.stdoutMaxBytes).toBe(MAX_COMMAND_OUTPUT_BYTES)
  })

  it('decoded bytes do not alias the frame', () => {
    const frame = stealRequestCodec.encode({
      t: 'push',
      batch: { jobs: [jobSpec()], tasks: [task('job-1', 0, { input: bytesOf(1000) })] },
    })
    const msg = stealRequestCodec.decode(frame)
    if (msg.t !== 'push') throw new Error('wrong type')
    frame.fill(0)
    expect(msg.batch.tasks[0].input).toEqual(bytesOf(1000))
  })
})
