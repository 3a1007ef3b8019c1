/**
 * `/gridnode/blob/1.0.0`: fetch content-addressed bytes by their sha256.
 * One fetch per stream: the client sends blob-get and closes its end; the
 * server answers blob-header, then the bytes as blob-chunk frames of at most
 * 1 MiB each, then closes. The client checks the hash of the whole.
 *
 * A piece-map query (`pieces: true`) asks which pieces of a file the peer
 * holds, whole or while it is still fetching it: the answer is blob-pieces
 * (a bitfield), or a blob-header saying not found. Servers older than the
 * query refuse the unknown field (the stream is reset); a fetcher then falls
 * back to the `have` query (length 0), which only whole holders answer.
 */
import { type ErrorReply, errorReplyFields, fields, messageCodec } from '../message.ts'
import { bool, bytes, type Check, fail, optional, refine, str, uint } from '../validate.ts'

export const BLOB_PROTOCOL = '/gridnode/blob/1.0.0'
/** Largest blob the wire format can describe (served or fetched). */
export const BLOB_MAX_BYTES = 256 * 1024 * 1024
/**
 * Largest blob a node fetches unless told otherwise: the largest it accepts
 * (a blob enters a mesh through the local API, whose bodies stop at 64 MiB).
 * A header announcing more is refused before anything is allocated.
 */
export const BLOB_FETCH_MAX_BYTES = 64 * 1024 * 1024
/**
 * Largest file a header may announce (a range fetch reads pieces of it, so
 * no fetch ever holds more than one range in memory).
 */
export const BLOB_MAX_FILE_BYTES = 2 ** 50
/** Largest range one blob-get may ask for. */
export const BLOB_MAX_RANGE_BYTES = 16 * 1024 * 1024
/** Largest chunk of blob data in one frame. */
export const BLOB_CHUNK_BYTES = 1024 * 1024
/** Largest frame: a full chunk plus its envelope. */
export const BLOB_MAX_MESSAGE_BYTES = BLOB_CHUNK_BYTES + 1024

/** A blob's name: the sha256 of its bytes as 64 lowercase hex characters. */
export const BLOB_HASH_PATTERN = /^[0-9a-f]{64}$/

export const blobHash: Check<string> = str({ min: 64, max: 64, pattern: BLOB_HASH_PATTERN })

export interface BlobGet {
  t: 'blob-get'
  hash: string
  /**
   * A range of the blob instead of all of it: `length` bytes from `offset`
   * (clipped at its end). `length` 0 asks only whether the peer has the blob
   * and its size (a `have` query): the header comes, no chunks.
   */
  offset?: number
  length?: number
  /** A piece-map query: which pieces of the file the peer holds (not with offset/length). */
  pieces?: boolean
}

/** The answer to a piece-map query: bit i (of byte i >> 3, from the top bit) set when piece i is held. */
export interface BlobPieces {
  t: 'blob-pieces'
  /** The whole file's size. */
  size: number
  /** Bytes per piece. */
  chunk: number
  have: Uint8Array
}

/** Piece sizes a piece map may use. */
export const BLOB_MIN_PIECE_BYTES = 1024
export const BLOB_MAX_PIECE_BYTES = 16 * 1024 * 1024

/** Bytes of the bitfield for a file of `size` in pieces of `chunk`. */
export function pieceMapBytes(size: number, chunk: number): number {
  return Math.ceil(Math.max(1, Math.ceil(size / chunk)) / 8)
}

export interface BlobHeader {
  t: 'blob-header'
  found: boolean
  /** Total bytes that follow in chunks; 0 when not found. For a range: the whole blob's size. */
  size: number
}

export interface BlobChunk {
  t: 'blob-chunk'
  data: Uint8Array
}

export type BlobServerMessage = BlobHeader | BlobChunk | BlobPieces | ErrorReply

export const blobRequestCodec = messageCodec<BlobGet>('blob', BLOB_MAX_MESSAGE_BYTES, {
  'blob-get': refine(
    fields({
      hash: blobHash,
      offset: optional(uint(BLOB_MAX_FILE_BYTES)),
      length: optional(uint(BLOB_MAX_RANGE_BYTES)),
      pieces: optional(bool()),
    }),
    (g, path) => {
      if (g.pieces !== undefined && (g.offset !== undefined || g.length !== undefined))
        fail(`${path}.pieces`, 'a piece-map query takes no range')
    },
  ),
})

export const blobReplyCodec = messageCodec<BlobServerMessage>('blob', BLOB_MAX_MESSAGE_BYTES, {
  'blob-header': refine(fields({ found: bool(), size: uint(BLOB_MAX_FILE_BYTES) }), (h, path) => {
    if (!h.found && h.size !== 0) fail(`${path}.size`, 'must be 0 when not found')
  }),
  'blob-chunk': refine(fields({ data: bytes(BLOB_CHUNK_BYTES) }), (c, path) => {
    if (c.data.byteLength === 0) fail(`${path}.data`, 'empty chunk')
  }),
  'blob-pieces': refine(
    fields({
      size: uint(BLOB_MAX_FILE_BYTES),
      chunk: uint(BLOB_MAX_PIECE_BYTES),
      have: bytes(BLOB_CHUNK_BYTES),
    }),
    (m, path) => {
      if (m.chunk < BLOB_MIN_PIECE_BYTES) fail(`${path}.chunk`, `below ${BLOB_MIN_PIECE_BYTES}`)
      else if (m.have.byteLength !== pieceMapBytes(m.size, m.chunk))
        fail(`${path}.have`, `must be ${pieceMapBytes(m.size, m.chunk)} bytes for its size and chunk`)
    },
  ),
  error: errorReplyFields,
})
