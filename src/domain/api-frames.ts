/**
 * The control API's channel: the same requests and answers as its HTTP routes,
 * as length-prefixed frames on one connection that the client keeps open.
 *
 * A client opens it with an HTTP upgrade (`GET /v1/channel`, `Upgrade:
 * gridnode-api/1`, the bearer token); from the `101` answer on, both sides
 * speak frames. Requests carry an id of the client's choosing and answers come
 * back with it, in any order, so many requests share the connection. A request
 * costs a frame each way instead of HTTP's headers, parsing and per-request
 * objects: most of a single task's round trip once the task itself is cheap.
 *
 *     u32 length of what follows (big-endian, like every number here)
 *     u8  kind: 1 request, 2 answer, 3 cancel
 *     u32 request id
 *     request: u16 target length, target (UTF-8 "METHOD /path?query"),
 *              u8 body type (0 none, 1 JSON text, 2 bytes), body
 *     answer:  u16 HTTP status, u8 body type (0 or 1), body
 *     cancel:  nothing (the client gave up on that request)
 *
 * Both sides read with `FrameReader` (./frame-reader.ts), which refuses a
 * frame over its limit before buffering it.
 */
import { FrameError, FrameReader } from './frame-reader.ts'

export { FrameError, FrameReader }

export const API_CHANNEL_PATH = '/v1/channel'
export const API_CHANNEL_PROTOCOL = 'gridnode-api/1'

/** The largest request body the API takes, over HTTP or the channel; also the largest blob a node
 * accepts: keep BLOB_FETCH_MAX_BYTES (src/protocol/blob/codec.ts) equal. */
export const API_MAX_BODY_BYTES = 64 * 1024 * 1024
/** A request's "METHOD /path?query". */
export const API_MAX_TARGET_BYTES = 8 * 1024
/** The largest request frame the daemon reads. */
export const API_MAX_REQUEST_FRAME = API_MAX_BODY_BYTES + API_MAX_TARGET_BYTES + 16
/** The shortest frame: a kind and an id. */
export const API_MIN_FRAME = 5
/** The largest answer the client reads: 1 GiB (a string cannot hold much more; HTTP answers are no larger). */
export const API_MAX_ANSWER_FRAME = 1024 * 1024 * 1024

export const FRAME_REQUEST = 1
export const FRAME_ANSWER = 2
export const FRAME_CANCEL = 3

export const BODY_NONE = 0
export const BODY_JSON = 1
export const BODY_BYTES = 2

export type ChannelFrame =
  | { kind: typeof FRAME_REQUEST; id: number; method: string; target: string; bodyType: number; body: Buffer }
  | { kind: typeof FRAME_ANSWER; id: number; status: number; bodyType: number; body: Buffer }
  | { kind: typeof FRAME_CANCEL; id: number }

/** A request frame; `body` is JSON text, bytes, or nothing. */
export function encodeRequest(
  id: number,
  method: string,
  target: string,
  body?: string | Uint8Array,
): Buffer {
  const line = `${method} ${target}`
  const lineBytes = Buffer.byteLength(line)
  if (lineBytes > API_MAX_TARGET_BYTES)
    throw new RangeError(`request target over ${API_MAX_TARGET_BYTES} bytes`)
  const bodyBytes =
    body === undefined ? 0 : typeof body === 'string' ? Buffer.byteLength(body) : body.byteLength
  const head = 4 + 1 + 4 + 2 + lineBytes + 1
  const buf = Buffer.allocUnsafe(head + bodyBytes)
  buf.writeUInt32BE(head + bodyBytes - 4, 0)
  buf[4] = FRAME_REQUEST
  buf.writeUInt32BE(id, 5)
  buf.writeUInt16BE(lineBytes, 9)
  buf.write(line, 11, 'utf8')
  buf[head - 1] = body === undefined ? BODY_NONE : typeof body === 'string' ? BODY_JSON : BODY_BYTES
  if (typeof body === 'string') buf.write(body, head, 'utf8')
  else if (body !== undefined) buf.set(body, head)
  return buf
}

/** An answer frame with its JSON text. */
export function encodeAnswer(id: number, status: number, json: string): Buffer {
  const bodyBytes = Buffer.byteLength(json)
  const buf = Buffer.allocUnsafe(12 + bodyBytes)
  buf.writeUInt32BE(8 + bodyBytes, 0)
  buf[4] = FRAME_ANSWER
  buf.writeUInt32BE(id, 5)
  buf.writeUInt16BE(status, 9)
  buf[11] = BODY_JSON
  buf.write(json, 12, 'utf8')
  return buf
}

export function encodeCancel(id: number): Buffer {
  const buf = Buffer.allocUnsafe(9)
  buf.writeUInt32BE(5, 0)
  buf[4] = FRAME_CANCEL
  buf.writeUInt32BE(id, 5)
  return buf
}

/** One frame (without its length prefix); throws FrameError when it is malformed. */
export function decodeFrame(f: Buffer): ChannelFrame {
  if (f.length < 5) throw new FrameError(`a ${f.length}-byte frame is too short`)
  const kind = f[0]
  const id = f.readUInt32BE(1)
  if (kind === FRAME_CANCEL) {
    if (f.length !== 5) throw new FrameError('a cancel frame carries nothing but its id')
    return { kind, id }
  }
  if (kind === FRAME_REQUEST) {
    if (f.length < 8) throw new FrameError('a request frame is too short')
    const lineBytes = f.readUInt16BE(5)
    if (lineBytes > API_MAX_TARGET_BYTES || 7 + lineBytes + 1 > f.length)
      throw new FrameError('a request frame is shorter than its target')
    const line = f.toString('utf8', 7, 7 + lineBytes)
    const space = line.indexOf(' ')
    if (space <= 0) throw new FrameError('a request target is not "METHOD /path"')
    const bodyType = f[7 + lineBytes]
    if (bodyType > BODY_BYTES) throw new FrameError(`unknown body type ${bodyType}`)
    const body = f.subarray(8 + lineBytes)
    if (bodyType === BODY_NONE && body.length > 0)
      throw new FrameError('a request without a body carries bytes')
    return { kind, id, method: line.slice(0, space), target: line.slice(space + 1), bodyType, body }
  }
  if (kind === FRAME_ANSWER) {
    if (f.length < 8) throw new FrameError('an answer frame is too short')
    const bodyType = f[7]
    if (bodyType > BODY_JSON) throw new FrameError(`unknown answer body type ${bodyType}`)
    const body = f.subarray(8)
    if (bodyType === BODY_NONE && body.length > 0)
      throw new FrameError('an answer without a body carries bytes')
    return { kind, id, status: f.readUInt16BE(5), bodyType, body }
  }
  throw new FrameError(`unknown frame kind ${kind}`)
}

/** The frames `chunk` completes, decoded; throws FrameError on a bad length or a malformed frame. */
export function readFrames(reader: FrameReader, chunk: Buffer): ChannelFrame[] {
  return reader.push(chunk).map(decodeFrame)
}
