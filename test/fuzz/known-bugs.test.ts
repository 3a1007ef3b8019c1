/**
 * Reproducers of bugs the fuzzers found, reported to the owners of the files
 * in src/. `it.fails` while the bug is there; once fixed, the test fails:
 * then turn `it.fails` into `it` and remove the bug from KNOWN_BUGS in
 * test/fuzz/codecs.ts, so the fuzzers stop tolerating it.
 */
import { describe, expect, it } from 'vitest'
import { RemoteProtocolError } from '../../src/errors.ts'
import { stealRequestCodec } from '../../src/protocol/steal/codec.ts'

const fromHex = (h: string) => Uint8Array.from(Buffer.from(h, 'hex'))

describe('fuzz: known bugs', () => {
  // {v: 1, t: {toString: 0}} — src/protocol/message.ts checkEnvelope calls String(t) on the
  // decoded map, which throws TypeError ("Cannot convert object to primitive value"). Every
  // messageCodec (steal, result, lease, blob, member, capacity, and their replies) is affected:
  // servers count the stream as "broken" instead of "malformed"; clients get a TypeError.
  it.fails('envelope-string-t: a map as `t` whose toString is not a function is a RemoteProtocolError', () => {
    const bytes = fromHex('a26174a168746f537472696e6700617601')
    expect(() => stealRequestCodec.decode(bytes)).toThrow(RemoteProtocolError)
  })
})
