/**
 * Chunk lists: a file larger than one chunk is described by a small blob
 * listing the sha256 of each FILE_CHUNK_BYTES piece, so a node fetching it
 * verifies every piece as it arrives (a corrupt piece is refused and fetched
 * again, from another source if need be) and resumes from the pieces it has.
 * The list is JSON: `{"v":1,"size":N,"chunk":C,"sha256":H,"pieces":[...]}`.
 */
import { createHash } from 'node:crypto'

/** Bytes per piece of a file (the last one may be shorter). */
export const FILE_CHUNK_BYTES = 4 * 1024 * 1024

export interface ChunkList {
  v: 1
  size: number
  chunk: number
  /** The whole file's sha256. */
  sha256: string
  pieces: string[]
}

const HEX64 = /^[0-9a-f]{64}$/

export function encodeChunkList(list: ChunkList): Uint8Array {
  return new TextEncoder().encode(JSON.stringify(list))
}

/** Parses and checks a chunk list (sizes and piece count must agree). */
export function decodeChunkList(bytes: Uint8Array): ChunkList {
  const o = JSON.parse(new TextDecoder().decode(bytes)) as ChunkList
  if (
    o?.v !== 1 ||
    !Number.isSafeInteger(o.size) ||
    o.size < 0 ||
    !Number.isSafeInteger(o.chunk) ||
    o.chunk < 1024 ||
    o.chunk > 16 * 1024 * 1024 ||
    typeof o.sha256 !== 'string' ||
    !HEX64.test(o.sha256) ||
    !Array.isArray(o.pieces) ||
    o.pieces.length !== Math.ceil(o.size / o.chunk) ||
    !o.pieces.every((p) => typeof p === 'string' && HEX64.test(p))
  )
    throw new Error('not a valid chunk list')
  return o
}

/** Hashes a stream of a file's bytes: the whole file's sha256 and each piece's. */
export class ChunkHasher {
  private readonly whole = createHash('sha256')
  private piece = createHash('sha256')
  private inPiece = 0
  private readonly pieces: string[] = []
  size = 0
  private readonly chunk: number

  constructor(chunk = FILE_CHUNK_BYTES) {
    this.chunk = chunk
  }

  update(data: Uint8Array): void {
    this.whole.update(data)
    this.size += data.byteLength
    let at = 0
    while (at < data.byteLength) {
      const take = Math.min(this.chunk - this.inPiece, data.byteLength - at)
      this.piece.update(data.subarray(at, at + take))
      this.inPiece += take
      at += take
      if (this.inPiece === this.chunk) {
        this.pieces.push(this.piece.digest('hex'))
        this.piece = createHash('sha256')
        this.inPiece = 0
      }
    }
  }

  digest(): ChunkList {
    if (this.inPiece > 0) this.pieces.push(this.piece.digest('hex'))
    this.inPiece = 0
    return { v: 1, size: this.size, chunk: this.chunk, sha256: this.whole.digest('hex'), pieces: this.pieces }
  }
}
