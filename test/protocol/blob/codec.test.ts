import { describe, expect, it } from 'vitest'
import {
  BLOB_CHUNK_BYTES,
  BLOB_MAX_BYTES,
  BLOB_MAX_FILE_BYTES,
  BLOB_MAX_MESSAGE_BYTES,
  BLOB_MAX_RANGE_BYTES,
  blobReplyCodec,
  blobRequestCodec,
  pieceMapBytes,
} from '../../../src/protocol/blob/codec.ts'
import { hasPiece, pieceBits } from '../../../src/protocol/blob/handler.ts'
import { rejected } from '../codec-helpers.ts'

const HASH = 'ab'.repeat(32)

describe('blob codec', () => {
  it('round-trips', () => {
    const get = { t: 'blob-get' as const, hash: HASH }
    expect(blobRequestCodec.decode(blobRequestCodec.encode(get))).toEqual(get)
    const range = { t: 'blob-get' as const, hash: HASH, offset: 8 << 20, length: 4 << 20 }
    expect(blobRequestCodec.decode(blobRequestCodec.encode(range))).toEqual(range)
    for (const msg of [
      { t: 'blob-header' as const, found: true, size: BLOB_MAX_BYTES },
      { t: 'blob-header' as const, found: false, size: 0 },
      { t: 'error' as const, code: 'GN_IO', message: 'EIO' },
    ]) {
      expect(blobReplyCodec.decode(blobReplyCodec.encode(msg))).toEqual(msg)
    }
    expect(
      blobReplyCodec.encode({ t: 'blob-chunk', data: new Uint8Array(BLOB_CHUNK_BYTES) }).byteLength,
    ).toBeLessThan(BLOB_MAX_MESSAGE_BYTES)
  })

  it('rejects bad hashes, sizes and chunks', () => {
    expect(rejected(blobRequestCodec.decode, { v: 1, t: 'blob-get', hash: HASH.toUpperCase() })).toMatch(
      /blob\.blob-get\.hash: string has the wrong format/,
    )
    expect(rejected(blobRequestCodec.decode, { v: 1, t: 'blob-get', hash: HASH.slice(1) })).toMatch(/hash/)
    expect(rejected(blobRequestCodec.decode, { v: 1, t: 'blob-get', hash: `${HASH}00` })).toMatch(/hash/)
    expect(rejected(blobRequestCodec.decode, { v: 1, t: 'blob-get', hash: new Uint8Array(32) })).toMatch(
      /hash/,
    )
    expect(
      rejected(blobReplyCodec.decode, { v: 1, t: 'blob-header', found: true, size: BLOB_MAX_FILE_BYTES + 1 }),
    ).toMatch(/blob\.blob-header\.size: expected at most/)
    // A header may announce a file larger than a whole-blob fetch takes (its pieces come as ranges).
    expect(
      blobReplyCodec.decode(
        blobReplyCodec.encode({ t: 'blob-header', found: true, size: BLOB_MAX_BYTES + 1 }),
      ),
    ).toMatchObject({ size: BLOB_MAX_BYTES + 1 })
    expect(
      rejected(blobRequestCodec.decode, {
        v: 1,
        t: 'blob-get',
        hash: HASH,
        offset: 0,
        length: BLOB_MAX_RANGE_BYTES + 1,
      }),
    ).toMatch(/length: expected at most/)
    expect(rejected(blobReplyCodec.decode, { v: 1, t: 'blob-header', found: false, size: 3 })).toMatch(
      /size: must be 0 when not found/,
    )
    expect(rejected(blobReplyCodec.decode, { v: 1, t: 'blob-header', found: 1, size: 3 })).toMatch(/found/)
    expect(rejected(blobReplyCodec.decode, { v: 1, t: 'blob-chunk', data: new Uint8Array() })).toMatch(
      /empty chunk/,
    )
    expect(
      rejected(blobReplyCodec.decode, { v: 1, t: 'blob-chunk', data: new Uint8Array(BLOB_CHUNK_BYTES + 1) }),
    ).toMatch(/data: byte string longer/)
    expect(rejected(blobReplyCodec.decode, { v: 1, t: 'blob-chunk', data: [1, 2] })).toMatch(
      /data: expected bytes/,
    )
    expect(rejected(blobRequestCodec.decode, { v: 1, t: 'blob-chunk', data: new Uint8Array(1) })).toMatch(
      /blob\.t/,
    )
  })
})

describe('blob piece maps', () => {
  const MiB = 1024 * 1024

  it('round-trips a query and its answer; the bitfield has exactly the bytes its size and chunk need', () => {
    const q = { t: 'blob-get' as const, hash: HASH, pieces: true }
    expect(blobRequestCodec.decode(blobRequestCodec.encode(q))).toEqual(q)
    const map = { t: 'blob-pieces' as const, size: 50 * MiB, chunk: 4 * MiB, have: new Uint8Array(2) }
    expect(pieceMapBytes(map.size, map.chunk)).toBe(2) // 13 pieces
    expect(blobReplyCodec.decode(blobReplyCodec.encode(map))).toEqual(map)
  })

  it('refuses hostile maps and queries', () => {
    const base = { v: 1, t: 'blob-pieces', size: 50 * MiB, chunk: 4 * MiB }
    expect(rejected(blobReplyCodec.decode, { ...base, have: new Uint8Array(3) })).toMatch(
      /blob\.blob-pieces\.have: must be 2 bytes/,
    )
    expect(rejected(blobReplyCodec.decode, { ...base, chunk: 0, have: new Uint8Array(2) })).toMatch(
      /chunk: below 1024/,
    )
    expect(rejected(blobReplyCodec.decode, { ...base, chunk: 32 * MiB, have: new Uint8Array(1) })).toMatch(
      /chunk: expected at most/,
    )
    // A file whose bitfield would not fit in one frame cannot be described at all.
    expect(
      rejected(blobReplyCodec.decode, {
        ...base,
        size: BLOB_MAX_FILE_BYTES,
        chunk: 1024,
        have: new Uint8Array(BLOB_CHUNK_BYTES + 1),
      }),
    ).toMatch(/have/)
    expect(
      rejected(blobRequestCodec.decode, { v: 1, t: 'blob-get', hash: HASH, pieces: true, offset: 0 }),
    ).toMatch(/a piece-map query takes no range/)
    expect(rejected(blobRequestCodec.decode, { v: 1, t: 'blob-get', hash: HASH, pieces: 1 })).toMatch(
      /pieces: expected a boolean/,
    )
  })

  it('hasPiece and pieceBits agree, and read nothing outside the bitfield', () => {
    const have = pieceBits(13, [0, 7, 8, 12])
    expect(have.byteLength).toBe(2)
    expect([...Array(16).keys()].filter((i) => hasPiece(have, i))).toEqual([0, 7, 8, 12])
    expect(hasPiece(have, -1)).toBe(false)
    expect(hasPiece(have, 1 << 20)).toBe(false)
    const all = pieceBits(13, 'all')
    expect([...Array(16).keys()].filter((i) => hasPiece(all, i))).toEqual([...Array(13).keys()])
  })
})
