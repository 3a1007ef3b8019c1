/**
 * The sandboxed worker's wire: length-prefixed frames over pipes (a 4-byte
 * big-endian length, then the payload).
 *
 * - Daemon → worker (its stdin): `ToWorker` messages as node:v8 bytes. The
 *   worker trusts its parent.
 * - Worker → daemon (fd 3): results in a fixed binary layout that the daemon
 *   parses without trusting it (the task's code shares the worker's process
 *   and can write to that fd). Values stay opaque bytes here; their owner
 *   pre-scans them before decoding, as it does for any peer's value.
 *
 *   result  := u8 kind=1 | u32 id | u8 status (0 ok, 1 threw, 2 rejected) | f64 ms
 *              | u32 n | value[n] | u32 n | error utf8[n] | u32 n | stack utf8[n]   (n = 0xffffffff: absent)
 *   ready   := u8 kind=2
 *   revoked := u8 kind=3 | u32 n | u32 id[n]   (the queued tasks it dropped on `revoke`, in order)
 */
import v8 from 'node:v8'
import { FrameError, FrameReader as LengthFrameReader } from '../../domain/frame-reader.ts'
import type { ToWorker, WireResult } from '../worker-protocol.ts'

/** The largest frame either side accepts: a result value may be as big as a blob. */
export const MAX_FRAME_BYTES = 256 * 1024 * 1024 + 64 * 1024
const ABSENT = 0xffff_ffff
const KIND_RESULT = 1
const KIND_READY = 2
const KIND_REVOKED = 3
const STATUSES = ['ok', 'threw', 'rejected'] as const

export type FromSandbox =
  | { type: 'ready' }
  | { type: 'result'; result: WireResult }
  | { type: 'revoked'; ids: number[] }

/** Bytes that break the framing or the layout: the worker is not to be trusted any more. */
export { FrameError }

/** Reassembles frames from chunks; throws FrameError on a length above the cap. */
export class FrameReader extends LengthFrameReader {
  constructor(max = MAX_FRAME_BYTES) {
    super(max)
  }
}

function withLength(payload: Uint8Array): Buffer {
  const out = Buffer.allocUnsafe(4 + payload.byteLength)
  out.writeUInt32BE(payload.byteLength, 0)
  out.set(payload, 4)
  return out
}

export function encodeToWorker(msg: ToWorker): Buffer {
  return withLength(v8.serialize(msg))
}

export function decodeToWorker(payload: Buffer): ToWorker {
  return v8.deserialize(payload) as ToWorker
}

export function encodeReady(): Buffer {
  return withLength(Uint8Array.of(KIND_READY))
}

export function encodeRevoked(ids: readonly number[]): Buffer {
  const out = Buffer.allocUnsafe(4 + 1 + 4 + 4 * ids.length)
  let at = out.writeUInt32BE(1 + 4 + 4 * ids.length, 0)
  at = out.writeUInt8(KIND_REVOKED, at)
  at = out.writeUInt32BE(ids.length, at)
  for (const id of ids) at = out.writeUInt32BE(id >>> 0, at)
  return out
}

export function encodeResult(r: WireResult): Buffer {
  const status = STATUSES.indexOf(r.status)
  const err = r.error === undefined ? undefined : Buffer.from(r.error, 'utf8')
  const stack = r.stack === undefined ? undefined : Buffer.from(r.stack, 'utf8')
  const size = 1 + 4 + 1 + 8 + 12 + (r.value?.byteLength ?? 0) + (err?.length ?? 0) + (stack?.length ?? 0)
  const out = Buffer.allocUnsafe(4 + size)
  let at = out.writeUInt32BE(size, 0)
  at = out.writeUInt8(KIND_RESULT, at)
  at = out.writeUInt32BE(r.id >>> 0, at)
  at = out.writeUInt8(status, at)
  at = out.writeDoubleBE(r.ms, at)
  for (const part of [r.value, err, stack]) {
    if (part === undefined) {
      at = out.writeUInt32BE(ABSENT, at)
    } else {
      at = out.writeUInt32BE(part.byteLength, at)
      out.set(part, at)
      at += part.byteLength
    }
  }
  return out
}

/** Parses one frame from a worker; throws FrameError on anything but a well-formed frame. */
export function decodeFromSandbox(frame: Buffer): FromSandbox {
  if (frame.length === 1 && frame[0] === KIND_READY) return { type: 'ready' }
  if (frame.length >= 5 && frame[0] === KIND_REVOKED) {
    const n = frame.readUInt32BE(1)
    if (frame.length !== 5 + 4 * n) throw new FrameError('a revoked frame of the wrong length')
    const ids: number[] = []
    for (let i = 0; i < n; i++) ids.push(frame.readUInt32BE(5 + 4 * i))
    return { type: 'revoked', ids }
  }
  if (frame.length < 26 || frame[0] !== KIND_RESULT) throw new FrameError('not a result frame')
  const id = frame.readUInt32BE(1)
  const status = STATUSES[frame[5]]
  if (status === undefined) throw new FrameError(`bad status ${frame[5]}`)
  const ms = frame.readDoubleBE(6)
  let at = 14
  const part = (): Buffer | undefined => {
    if (at + 4 > frame.length) throw new FrameError('truncated result frame')
    const n = frame.readUInt32BE(at)
    at += 4
    if (n === ABSENT) return undefined
    if (at + n > frame.length) throw new FrameError('truncated result frame')
    const bytes = frame.subarray(at, at + n)
    at += n
    return bytes
  }
  const value = part()
  const error = part()
  const stack = part()
  if (at !== frame.length) throw new FrameError('trailing bytes in a result frame')
  const result: WireResult = { id, status, ms: Number.isFinite(ms) && ms >= 0 ? ms : 0 }
  // A copy: the frame's buffer may be a slice of a larger chunk that would otherwise stay alive.
  if (value !== undefined) result.value = new Uint8Array(value)
  if (error !== undefined) result.error = error.toString('utf8')
  if (stack !== undefined) result.stack = stack.toString('utf8')
  return { type: 'result', result }
}
