import fc from 'fast-check'
import { describe, expect, test } from 'vitest'
import {
  API_MAX_TARGET_BYTES,
  BODY_BYTES,
  BODY_JSON,
  BODY_NONE,
  decodeFrame,
  encodeAnswer,
  encodeCancel,
  encodeRequest,
  FRAME_ANSWER,
  FRAME_CANCEL,
  FRAME_REQUEST,
  FrameError,
  FrameReader,
} from '../../src/domain/api-frames.ts'

/** All frames `bytes` holds, fed to a reader in pieces cut at `cuts`. */
function readAll(bytes: Buffer, cuts: number[], max = 1 << 20): Buffer[] {
  const r = new FrameReader(max)
  const out: Buffer[] = []
  let at = 0
  for (const c of [...cuts.filter((x) => x > 0 && x < bytes.length)].sort((a, b) => a - b)) {
    out.push(...r.push(bytes.subarray(at, c)))
    at = c
  }
  out.push(...r.push(bytes.subarray(at)))
  expect(r.pending).toBe(0)
  return out
}

describe('API channel frames', () => {
  test('requests, answers and cancels come back as they went, however the stream is cut', () => {
    const request = fc.record({
      id: fc.integer({ min: 0, max: 0xffff_ffff }),
      method: fc.constantFrom('GET', 'POST', 'PUT'),
      target: fc.string({ maxLength: 200 }).map((s) => `/v1/${s}`),
      body: fc.oneof(
        fc.constant(undefined),
        fc.string({ unit: 'binary', maxLength: 300 }),
        fc.uint8Array({ maxLength: 300 }),
      ),
    })
    const answer = fc.record({
      id: fc.integer({ min: 0, max: 0xffff_ffff }),
      status: fc.integer({ min: 100, max: 599 }),
      json: fc.json(),
    })
    fc.assert(
      fc.property(
        fc.array(fc.oneof(request, answer, fc.integer({ min: 0, max: 0xffff_ffff })), { maxLength: 12 }),
        fc.array(fc.nat(4000), { maxLength: 30 }),
        (items, cuts) => {
          const encoded = items.map((it) =>
            typeof it === 'number'
              ? encodeCancel(it)
              : 'method' in it
                ? encodeRequest(it.id, it.method, it.target, it.body)
                : encodeAnswer(it.id, it.status, it.json),
          )
          const frames = readAll(Buffer.concat(encoded), cuts).map(decodeFrame)
          expect(frames).toHaveLength(items.length)
          for (const [i, it] of items.entries()) {
            const f = frames[i]
            if (typeof it === 'number') {
              expect(f).toEqual({ kind: FRAME_CANCEL, id: it })
              continue
            }
            if ('method' in it) {
              if (f.kind !== FRAME_REQUEST) throw new Error(`frame ${i} is not a request`)
              expect([f.id, f.method, f.target]).toEqual([it.id, it.method, it.target])
              if (it.body === undefined) expect([f.bodyType, f.body.length]).toEqual([BODY_NONE, 0])
              else if (typeof it.body === 'string')
                expect([f.bodyType, f.body.toString('utf8')]).toEqual([BODY_JSON, it.body])
              else expect([f.bodyType, new Uint8Array(f.body)]).toEqual([BODY_BYTES, it.body])
              continue
            }
            if (f.kind !== FRAME_ANSWER) throw new Error(`frame ${i} is not an answer`)
            expect([f.id, f.status, f.bodyType, f.body.toString('utf8')]).toEqual([
              it.id,
              it.status,
              BODY_JSON,
              it.json,
            ])
          }
        },
      ),
      { numRuns: 300 },
    )
  })

  test('a reader refuses a frame over its limit from the length prefix alone, and one under 5 bytes', () => {
    const r = new FrameReader(1000, 5)
    const prefix = Buffer.alloc(4)
    prefix.writeUInt32BE(1001)
    expect(() => r.push(prefix)).toThrow(FrameError)
    prefix.writeUInt32BE(4)
    expect(() => new FrameReader(1000, 5).push(prefix)).toThrow(FrameError)
    // At the limit it waits for the bytes instead.
    prefix.writeUInt32BE(1000)
    const ok = new FrameReader(1000, 5)
    expect(ok.push(prefix)).toEqual([])
    expect(ok.push(Buffer.alloc(999))).toEqual([])
    expect(ok.push(Buffer.alloc(1))).toHaveLength(1)
  })

  test('decodeFrame throws only FrameError on any bytes, and never reads past the frame', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
        const buf = Buffer.from(bytes)
        try {
          const f = decodeFrame(buf)
          if (f.kind !== FRAME_CANCEL)
            expect(f.body.byteOffset + f.body.length).toBeLessThanOrEqual(buf.byteOffset + buf.length)
        } catch (err) {
          expect(err).toBeInstanceOf(FrameError)
        }
      }),
      { numRuns: 5000 },
    )
  })

  test('malformed frames name what is wrong', () => {
    const frame = (...bytes: number[]) => Buffer.from(bytes)
    expect(() => decodeFrame(frame(9, 0, 0, 0, 1))).toThrow(/unknown frame kind 9/)
    expect(() => decodeFrame(frame(FRAME_CANCEL, 0, 0, 0, 1, 0))).toThrow(/carries nothing/)
    // A request whose target says 200 bytes but holds 3.
    expect(() => decodeFrame(frame(FRAME_REQUEST, 0, 0, 0, 1, 0, 200, 71, 69, 84))).toThrow(
      /shorter than its target/,
    )
    // "GET" without a path.
    expect(() => decodeFrame(frame(FRAME_REQUEST, 0, 0, 0, 1, 0, 3, 71, 69, 84, 0))).toThrow(/METHOD \/path/)
    const withBodyType = encodeRequest(1, 'GET', '/v1/status')
    withBodyType[withBodyType.length - 1] = 7
    expect(() => decodeFrame(withBodyType.subarray(4))).toThrow(/unknown body type 7/)
    expect(() => encodeRequest(1, 'GET', `/${'x'.repeat(API_MAX_TARGET_BYTES)}`)).toThrow(RangeError)
  })
})
