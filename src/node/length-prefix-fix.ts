/**
 * A workaround for @libp2p/utils' LengthPrefixedDecoder (under noise's
 * encrypted stream, so under every byte a connection reads). After taking
 * every whole frame out of a chunk it asks its length decoder for the next
 * length, which throws a RangeError when the buffer holds too few bytes; the
 * decoder catches that as "wait for more". A chunk of whole frames leaves the
 * buffer empty, so nearly every chunk read costs a new RangeError with its
 * stack trace: with 4 busy daemons 1-3% of each one's main thread (perf:
 * ErrorUtils::Construct under uint16BEDecode).
 *
 * Here each decoder's length decoder answers an empty buffer by throwing one
 * RangeError made once (throwing is cheap; capturing a stack is not). Every
 * length decoder throws a RangeError for an empty buffer, so the frames
 * decoded, and what is kept for later, are exactly as before.
 */
import { LengthPrefixedDecoder } from '@libp2p/utils'

type LengthDecoder = (data: { byteLength: number }) => number

/** What the decoder keeps of its options (public fields in its JavaScript; not in its types). */
interface DecoderFields {
  lengthDecoder: LengthDecoder & { [GUARDED]?: true }
}

const GUARDED = Symbol('gridnode.emptyGuard')
/** Thrown for every empty buffer: its stack is this module's, and nobody reads it. */
const NO_LENGTH_YET = new RangeError('no length prefix yet (empty buffer)')

let patched = false

export function patchLengthPrefixedDecoder(): void {
  if (patched) return
  patched = true
  const proto = LengthPrefixedDecoder.prototype as unknown as { decode: (buf: unknown) => Generator<unknown> }
  const decode = proto.decode
  if (typeof decode !== 'function') return // another version: nothing to fix
  proto.decode = function (this: DecoderFields, buf: unknown) {
    const lengthOf = this.lengthDecoder
    if (typeof lengthOf === 'function' && lengthOf[GUARDED] === undefined)
      this.lengthDecoder = guarded(lengthOf)
    return decode.call(this, buf)
  }
}

/** `lengthOf`, answering an empty buffer with the shared RangeError. */
function guarded(lengthOf: LengthDecoder): DecoderFields['lengthDecoder'] {
  const guard = (data: { byteLength: number }) => {
    if (data.byteLength === 0) throw NO_LENGTH_YET
    return lengthOf(data)
  }
  return Object.assign(guard, { [GUARDED]: true as const })
}

patchLengthPrefixedDecoder()
