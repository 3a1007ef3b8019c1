/**
 * The length-prefixed decoder under noise, patched so that an empty buffer costs no new
 * RangeError: it decodes the same frames from the same chunks as the decoder it patches, and
 * its length decoder is no longer asked about an empty buffer.
 */
import { randomBytes } from 'node:crypto'
import { LengthPrefixedDecoder } from '@libp2p/utils'
import { Uint8ArrayList } from 'uint8arraylist'
import { describe, expect, it } from 'vitest'

type LengthDecoder = NonNullable<
  NonNullable<ConstructorParameters<typeof LengthPrefixedDecoder>[0]>['lengthDecoder']
>
type Decode = (this: LengthPrefixedDecoder, buf: Uint8Array | Uint8ArrayList) => Generator<Uint8ArrayList>
const unpatched = LengthPrefixedDecoder.prototype.decode as unknown as Decode
await import('../../src/node/length-prefix-fix.ts')
const patched = LengthPrefixedDecoder.prototype.decode as unknown as Decode

/** Noise's length decoder (@chainsafe/libp2p-noise's encoder.js, not exported): a RangeError below 2 bytes. */
const uint16BEDecode: LengthDecoder = (data) => {
  if (data.byteLength < 2) throw new RangeError('Could not decode int16BE')
  const flat = data instanceof Uint8Array ? data : data.subarray(0, 2)
  return flat[0] * 256 + flat[1]
}

/** Frames as noise writes them: a 2-byte big-endian length, then that many bytes. */
function framed(frames: Uint8Array[]): Uint8Array {
  const out = new Uint8ArrayList()
  for (const f of frames) out.append(new Uint8Array([f.byteLength >> 8, f.byteLength & 255]), f)
  return out.subarray()
}

function decodeAll(decode: Decode, chunks: Uint8Array[], lengthDecoder: LengthDecoder) {
  const decoder = new LengthPrefixedDecoder({
    lengthDecoder,
    encodingLength: () => 2,
    maxBufferSize: 1 << 24,
  })
  const frames: string[] = []
  for (const c of chunks)
    for (const f of decode.call(decoder, c)) frames.push(Buffer.from(f.subarray()).toString('hex'))
  return frames
}

describe('LengthPrefixedDecoder without a new RangeError per chunk', () => {
  it('is installed on the prototype noise uses', () => {
    expect(patched).not.toBe(unpatched)
  })

  it('decodes the same frames as before from chunks cut anywhere', () => {
    const frames = Array.from({ length: 40 }, (_, i) => new Uint8Array(randomBytes((i * 37) % 700)))
    const wire = framed(frames)
    const cuts: number[][] = [
      [wire.byteLength], // one chunk of whole frames
      Array.from({ length: wire.byteLength }, (_, i) => i + 1), // byte by byte
      Array.from({ length: 60 }, () => Math.floor(Math.random() * wire.byteLength)).sort((a, b) => a - b),
    ]
    for (const cut of cuts) {
      const chunks: Uint8Array[] = []
      let at = 0
      for (const end of [...cut, wire.byteLength]) {
        chunks.push(wire.subarray(at, Math.max(at, end)))
        at = Math.max(at, end)
      }
      const before = decodeAll(unpatched, chunks, uint16BEDecode)
      const after = decodeAll(patched, chunks, uint16BEDecode)
      expect(after).toEqual(before)
      expect(after.length).toBe(frames.filter((f) => f.byteLength > 0).length)
    }
  })

  it('no longer asks its length decoder about an empty buffer, and still waits for a split prefix', () => {
    const asked: number[] = []
    const counting: LengthDecoder = (d) => {
      asked.push(d.byteLength)
      return uint16BEDecode(d)
    }
    const wire = framed([new Uint8Array([1, 2, 3]), new Uint8Array([4])])
    // Whole frames, then a chunk ending one byte into the next length prefix, then the rest.
    const more = framed([new Uint8Array([5, 6])])
    const frames = decodeAll(patched, [wire, more.subarray(0, 1), more.subarray(1)], counting)
    expect(frames).toEqual(['010203', '04', '0506'])
    expect(asked).not.toContain(0)
    expect(asked).toContain(1) // a one-byte prefix still reaches the decoder, which waits for more
  })
})
