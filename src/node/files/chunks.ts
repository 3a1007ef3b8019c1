/** Chunk lists are shared vocabulary (src/domain/chunks.ts: the client hashes files, nodes fetch them). */
export {
  ChunkHasher,
  type ChunkList,
  decodeChunkList,
  encodeChunkList,
  FILE_CHUNK_BYTES,
} from '../../domain/chunks.ts'
