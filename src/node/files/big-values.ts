/**
 * Task inputs, results and dependency values larger than INLINE_VALUE_BYTES travel as blobs:
 * the message carries a 48-byte reference in place of the value (a prefix
 * no encoded value can start with, since node:v8's format starts with 0xFF,
 * then the sha256 and the size), and the receiver fetches the bytes by hash
 * from the sender before it uses them. So big values no longer meet the
 * 8 MiB message cap, and they are cached and deduplicated like files.
 */
import { BLOB_MAX_FILE_BYTES } from '../../protocol/blob/codec.ts'

/** Values up to this size stay inline in messages. */
export const INLINE_VALUE_BYTES = 1024 * 1024
const MAGIC = new Uint8Array([0x00, 0x47, 0x4e, 0x42, 0x4c, 0x4f, 0x42, 0x01]) // \0 G N B L O B 1
export const BLOB_REF_BYTES = MAGIC.length + 32 + 8

export interface BlobRef {
  sha256: string
  size: number
}

export function blobRef(sha256: string, size: number): Uint8Array {
  const out = new Uint8Array(BLOB_REF_BYTES)
  out.set(MAGIC, 0)
  out.set(Buffer.from(sha256, 'hex'), MAGIC.length)
  new DataView(out.buffer).setBigUint64(MAGIC.length + 32, BigInt(size))
  return out
}

/** The reference a value's bytes hold, or undefined for an ordinary value. */
export function parseBlobRef(bytes: Uint8Array): BlobRef | undefined {
  if (bytes.byteLength !== BLOB_REF_BYTES) return undefined
  for (let i = 0; i < MAGIC.length; i++) if (bytes[i] !== MAGIC[i]) return undefined
  const size = Number(new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength).getBigUint64(40))
  if (!Number.isSafeInteger(size) || size > BLOB_MAX_FILE_BYTES) return undefined
  return { sha256: Buffer.from(bytes.subarray(8, 40)).toString('hex'), size }
}

/** Whether a task descriptor carries a blob reference (its input or a dependency's value). */
export function hasBlobRefs(task: { input: Uint8Array; depValues: Uint8Array[] }): boolean {
  if (parseBlobRef(task.input) !== undefined) return true
  for (const d of task.depValues) if (parseBlobRef(d) !== undefined) return true
  return false
}
