import { encode } from 'cborg'
import { afterEach, describe, expect, it } from 'vitest'
import { LocalProtocolError, RemoteProtocolError } from '../../src/errors.ts'
import { fields, messageCodec, setValidateOutgoing, toErrorReply } from '../../src/protocol/message.ts'
import { bytes, str, uint } from '../../src/protocol/validate.ts'

type Msg = { t: 'ping'; n: number; data: Uint8Array } | { t: 'note'; text: string }

const codec = messageCodec<Msg>('test', 256, {
  ping: fields({ n: uint(1000), data: bytes(64) }),
  note: fields({ text: str({ max: 16 }) }),
})

function decodeError(bytes: Uint8Array): Error {
  try {
    codec.decode(bytes)
  } catch (err) {
    expect(err).toBeInstanceOf(RemoteProtocolError)
    return err as Error
  }
  throw new Error('decode accepted a bad message')
}

afterEach(() => setValidateOutgoing(true))

describe('message envelope', () => {
  it('round-trips every message type with v and t on the wire', () => {
    const ping: Msg = { t: 'ping', n: 7, data: new Uint8Array([1, 2, 3]) }
    const bytes = codec.encode(ping)
    expect(codec.decode(bytes)).toEqual(ping)
    expect(codec.decode(codec.encode({ t: 'note', text: 'hi' }))).toEqual({ t: 'note', text: 'hi' })
    expect(codec.decode(encode({ v: 1, t: 'note', text: 'x' }))).toEqual({ t: 'note', text: 'x' })
  })

  it('rejects wrong versions and unknown or missing types', () => {
    expect(decodeError(encode({ v: 2, t: 'note', text: 'x' })).message).toMatch(
      /test\.v: unsupported schema version/,
    )
    expect(decodeError(encode({ t: 'note', text: 'x' })).message).toMatch(/test\.v/)
    expect(decodeError(encode({ v: 1, t: 'nope', text: 'x' })).message).toMatch(
      /test\.t: unknown message type/,
    )
    expect(decodeError(encode({ v: 1, t: 3 })).message).toMatch(/test\.t/)
    expect(decodeError(encode({ v: 1, text: 'x' })).message).toMatch(/test\.t/)
    expect(decodeError(encode({ v: 1, t: 'constructor' })).message).toMatch(/test\.t/)
  })

  it('rejects non-map messages', () => {
    for (const value of [[1, 'note'], 5, 'note', null, new Uint8Array(3)]) {
      expect(decodeError(encode(value)).message).toMatch(/test: expected a map/)
    }
  })

  it('rejects bad field types, ranges and extras, naming the field', () => {
    const cases: Array<[unknown, RegExp]> = [
      [{ v: 1, t: 'ping', n: -1, data: new Uint8Array() }, /test\.ping\.n: expected a non-negative integer/],
      [{ v: 1, t: 'ping', n: 1.5, data: new Uint8Array() }, /test\.ping\.n: expected an integer/],
      [{ v: 1, t: 'ping', n: 1001, data: new Uint8Array() }, /test\.ping\.n: expected at most 1000/],
      [{ v: 1, t: 'ping', n: '1', data: new Uint8Array() }, /test\.ping\.n: expected an integer/],
      [{ v: 1, t: 'ping', n: 1, data: 'abc' }, /test\.ping\.data: expected bytes/],
      [{ v: 1, t: 'ping', n: 1, data: new Uint8Array(65) }, /test\.ping\.data: byte string longer than 64/],
      [{ v: 1, t: 'ping', n: 1 }, /test\.ping\.data: missing/],
      [{ v: 1, t: 'ping', n: 1, data: new Uint8Array(), x: 1 }, /test\.ping: unexpected field "x"/],
      [{ v: 1, t: 'note', text: 'x'.repeat(17) }, /test\.note\.text: string longer than 16/],
    ]
    for (const [value, message] of cases) expect(decodeError(encode(value)).message).toMatch(message)
  })

  it('rejects malformed CBOR', () => {
    const good = codec.encode({ t: 'note', text: 'hello' })
    expect(decodeError(good.subarray(0, good.byteLength - 2)).message).toMatch(/malformed CBOR/)
    expect(decodeError(new Uint8Array([...good, 0])).message).toMatch(/malformed CBOR/)
    expect(decodeError(new Uint8Array()).message).toMatch(/malformed CBOR/)
    expect(decodeError(new Uint8Array([0xff])).message).toMatch(/malformed CBOR/)
  })

  it('rejects NaN, infinities, big integers, undefined, tags, indefinite lengths and duplicate keys', () => {
    const withN = (n: Uint8Array) =>
      new Uint8Array([
        0xa4,
        0x61,
        0x76,
        0x01,
        0x61,
        0x74,
        0x64,
        ...new TextEncoder().encode('ping'),
        0x61,
        0x6e,
        ...n,
        0x64,
        ...new TextEncoder().encode('data'),
        0x40,
      ])
    expect(() => codec.decode(withN(new Uint8Array([0x05])))).not.toThrow()
    const bad = [
      new Uint8Array([0xf9, 0x7e, 0x00]), // NaN (half float)
      new Uint8Array([0xf9, 0x7c, 0x00]), // +Infinity
      new Uint8Array([0x1b, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff]), // 2^64-1
      new Uint8Array([0x3b, 0x00, 0x20, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00]), // -(2^53)-1
      new Uint8Array([0xf7]), // undefined
      new Uint8Array([0xc1, 0x05]), // tag 1 (epoch time)
      new Uint8Array([0x18, 0x05]), // 5 in non-minimal form (strict)
    ]
    for (const n of bad) expect(decodeError(withN(n)).message).toMatch(/malformed CBOR/)
    // indefinite-length map
    expect(decodeError(new Uint8Array([0xbf, 0x61, 0x76, 0x01, 0xff])).message).toMatch(/malformed CBOR/)
    // duplicate key: {v:1, v:1}
    expect(decodeError(new Uint8Array([0xa2, 0x61, 0x76, 0x01, 0x61, 0x76, 0x01])).message).toMatch(
      /malformed CBOR/,
    )
  })

  it('survives absurd nesting and absurd declared lengths', () => {
    expect(decodeError(new Uint8Array(200).fill(0x81)).message).toMatch(/malformed CBOR|expected a map/)
    // an array claiming 2^32-1 items in 6 bytes
    expect(decodeError(new Uint8Array([0x9a, 0xff, 0xff, 0xff, 0xff, 0x00])).message).toMatch(
      /malformed CBOR/,
    )
    // a byte string claiming 4 GiB
    expect(decodeError(new Uint8Array([0x5a, 0xff, 0xff, 0xff, 0xff, 0x00])).message).toMatch(
      /malformed CBOR/,
    )
  })

  it('checks the size before decoding', () => {
    const huge = new Uint8Array(257).fill(0xff) // not CBOR at all: the size check must come first
    expect(decodeError(huge).message).toMatch(/test: message of 257 bytes exceeds 256/)
  })

  it('refuses to encode invalid or oversized messages of ours', () => {
    expect(() => codec.encode({ t: 'ping', n: -3, data: new Uint8Array() })).toThrow(LocalProtocolError)
    expect(() => codec.encode({ t: 'note', text: 'x'.repeat(17) })).toThrow(/test\.note\.text/)
    expect(() => codec.encode({ t: 'ping', n: 1, data: new Uint8Array(64) }).byteLength).not.toThrow()
    const big = messageCodec<Msg>('big', 32, {
      ping: fields({ n: uint(), data: bytes(64) }),
      note: fields({ text: str({ max: 16 }) }),
    })
    expect(() => big.encode({ t: 'ping', n: 1, data: new Uint8Array(40) })).toThrow(/exceeds 32/)
  })

  it('can skip validating outgoing messages, but never the size', () => {
    setValidateOutgoing(false)
    const bytes = codec.encode({ t: 'ping', n: -3, data: new Uint8Array() })
    expect(decodeError(bytes).message).toMatch(/test\.ping\.n/)
    expect(() => codec.encode({ t: 'ping', n: 1, data: new Uint8Array(300) })).toThrow(LocalProtocolError)
  })

  it('toErrorReply keeps code and message, truncated', () => {
    expect(toErrorReply(new LocalProtocolError('x'))).toEqual({
      t: 'error',
      code: 'GN_LOCAL_PROTOCOL',
      message: 'x',
    })
    expect(toErrorReply('plain')).toEqual({ t: 'error', code: 'GN_HANDLER_FAILED', message: 'plain' })
    expect(toErrorReply(new Error('y'.repeat(10_000))).message).toHaveLength(4096)
  })
})
