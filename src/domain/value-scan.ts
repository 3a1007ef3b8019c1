/**
 * A pre-scanner for node:v8's serialization format (what encodeValue makes),
 * run before any v8.deserialize of bytes that came from elsewhere.
 *
 * v8.deserialize trusts the lengths it reads: 15 bytes can declare a sparse
 * array of length 2^32-2, which deserializes in microseconds and then stalls
 * whatever walks it (JSON.stringify, join: seconds of a blocked event loop,
 * gigabytes of memory). The scanner walks the tags without building anything
 * and refuses, in time linear in the byte count:
 * - any declared length or byte count larger than the bytes that remain
 *   (strings, dense arrays, ArrayBuffers, typed arrays, BigInt digits);
 * - sparse arrays whose declared lengths, summed over the whole value, exceed
 *   the value's size plus SPARSE_SLACK (a hole costs no byte, so this bounds
 *   the elements any consumer may walk to O(bytes));
 * - nesting deeper than MAX_DEPTH (v8 itself stops near 3,300);
 * - every tag it does not know, and the ones that need a transfer list or a
 *   host (shared memory, wasm, transferred buffers).
 * It accepts everything v8.serialize produces for the values encodeValue allows.
 */
import { BadValueError } from './errors.ts'

/** Deeper than v8.serialize can go (about 3,300 on Node 24), shallower than our stack can't. */
export const MAX_DEPTH = 4000
/** Sparse-array length allowed beyond the value's byte count (`new Array(100)` is 7 bytes). */
export const SPARSE_SLACK = 65_536
const MAX_UINT32 = 0xffff_ffff
/** Node's DefaultSerializer writes typed arrays and Buffers as host objects with a type index (0..13 on Node 24). */
const MAX_HOST_TYPE_INDEX = 31

const Tag = {
  Padding: 0x00,
  Version: 0xff,
  TheHole: 0x2d, // '-'
  Undefined: 0x5f, // '_'
  Null: 0x30, // '0'
  True: 0x54, // 'T'
  False: 0x46, // 'F'
  Int32: 0x49, // 'I'
  Uint32: 0x55, // 'U'
  Double: 0x4e, // 'N'
  BigInt: 0x5a, // 'Z'
  Utf8String: 0x53, // 'S'
  OneByteString: 0x22, // '"'
  TwoByteString: 0x63, // 'c'
  ObjectReference: 0x5e, // '^'
  BeginObject: 0x6f, // 'o'
  EndObject: 0x7b, // '{'
  BeginSparseArray: 0x61, // 'a'
  EndSparseArray: 0x40, // '@'
  BeginDenseArray: 0x41, // 'A'
  EndDenseArray: 0x24, // '$'
  Date: 0x44, // 'D'
  TrueObject: 0x79, // 'y'
  FalseObject: 0x78, // 'x'
  NumberObject: 0x6e, // 'n'
  BigIntObject: 0x7a, // 'z'
  StringObject: 0x73, // 's'
  RegExp: 0x52, // 'R'
  BeginMap: 0x3b, // ';'
  EndMap: 0x3a, // ':'
  BeginSet: 0x27, // '\''
  EndSet: 0x2c, // ','
  ArrayBuffer: 0x42, // 'B'
  ResizableArrayBuffer: 0x7e, // '~'
  ArrayBufferView: 0x56, // 'V'
  HostObject: 0x5c, // '\\'
  Error: 0x72, // 'r'
} as const

const ErrorTag = {
  EvalError: 0x45, // 'E'
  RangeError: 0x52, // 'R'
  ReferenceError: 0x46, // 'F'
  SyntaxError: 0x53, // 'S'
  TypeError: 0x54, // 'T'
  UriError: 0x55, // 'U'
  Message: 0x6d, // 'm'
  Cause: 0x63, // 'c'
  Stack: 0x73, // 's'
  End: 0x2e, // '.'
} as const

class Scanner {
  private pos = 0
  private sparseBudget: number
  private version = 0
  private readonly bytes: Uint8Array

  constructor(bytes: Uint8Array) {
    this.bytes = bytes
    this.sparseBudget = bytes.byteLength + SPARSE_SLACK
  }

  private get remaining(): number {
    return this.bytes.byteLength - this.pos
  }

  private refuse(why: string): never {
    throw new BadValueError(
      `cannot decode value (${this.bytes.byteLength} bytes): ${why} at byte ${this.pos}`,
    )
  }

  private byte(): number {
    if (this.pos >= this.bytes.byteLength) this.refuse('unexpected end')
    return this.bytes[this.pos++]
  }

  private varint(): number {
    let value = 0
    let scale = 1
    for (let i = 0; i < 10; i++) {
      const b = this.byte()
      value += (b & 0x7f) * scale
      if ((b & 0x80) === 0) {
        if (value > MAX_UINT32) this.refuse(`varint ${value} over 32 bits`)
        return value
      }
      scale *= 128
    }
    this.refuse('varint too long')
  }

  /** A declared byte count: refused if more than what remains. */
  private skip(n: number, what: string): void {
    if (n > this.remaining) this.refuse(`${what} declares ${n} bytes, ${this.remaining} remain`)
    this.pos += n
  }

  private tag(): number {
    let t = this.byte()
    while (t === Tag.Padding) t = this.byte()
    return t
  }

  private peekTag(): number {
    let p = this.pos
    while (p < this.bytes.byteLength && this.bytes[p] === Tag.Padding) p++
    if (p >= this.bytes.byteLength) this.refuse('unexpected end')
    return this.bytes[p]
  }

  scan(): void {
    if (this.byte() !== Tag.Version) this.refuse('no format header')
    this.version = this.varint()
    if (this.version < 13 || this.version > 15) this.refuse(`unsupported format version ${this.version}`)
    this.value(0)
  }

  private string(depth: number): void {
    const t = this.tag()
    if (t !== Tag.OneByteString && t !== Tag.TwoByteString && t !== Tag.Utf8String) {
      this.refuse(`expected a string, found tag 0x${t.toString(16)}`)
    }
    this.skip(this.varint(), 'a string')
    void depth
  }

  /** Key/value pairs up to `end`, then the end tag's counts. */
  private properties(end: number, counts: number, depth: number): void {
    while (this.peekTag() !== end) {
      this.value(depth)
      this.value(depth)
    }
    this.tag()
    for (let i = 0; i < counts; i++) this.varint()
  }

  /** Values up to `end`, then the end tag's count. */
  private entries(end: number, depth: number): void {
    while (this.peekTag() !== end) this.value(depth)
    this.tag()
    this.varint()
  }

  private value(depth: number): void {
    if (depth > MAX_DEPTH) this.refuse(`nested deeper than ${MAX_DEPTH}`)
    const inner = depth + 1
    const t = this.tag()
    switch (t) {
      case Tag.TheHole:
      case Tag.Undefined:
      case Tag.Null:
      case Tag.True:
      case Tag.False:
      case Tag.TrueObject:
      case Tag.FalseObject:
        return
      case Tag.Int32:
      case Tag.Uint32:
      case Tag.ObjectReference:
        this.varint()
        return
      case Tag.Double:
      case Tag.Date:
      case Tag.NumberObject:
        this.skip(8, 'a double')
        return
      case Tag.BigInt:
      case Tag.BigIntObject:
        this.skip(this.varint() >>> 1, 'a BigInt')
        return
      case Tag.OneByteString:
      case Tag.TwoByteString:
      case Tag.Utf8String:
        this.skip(this.varint(), 'a string')
        return
      case Tag.StringObject:
        this.string(inner)
        return
      case Tag.RegExp:
        this.string(inner)
        this.varint()
        return
      case Tag.BeginObject:
        this.properties(Tag.EndObject, 1, inner)
        return
      case Tag.BeginDenseArray: {
        const length = this.varint()
        // Every element takes at least one byte.
        if (length > this.remaining)
          this.refuse(`array declares ${length} elements, ${this.remaining} bytes remain`)
        for (let i = 0; i < length; i++) this.value(inner)
        this.properties(Tag.EndDenseArray, 2, inner)
        return
      }
      case Tag.BeginSparseArray: {
        const length = this.varint()
        this.sparseBudget -= length
        if (this.sparseBudget < 0)
          this.refuse(`sparse array of length ${length} is out of proportion to the value`)
        this.properties(Tag.EndSparseArray, 2, inner)
        return
      }
      case Tag.BeginMap:
        this.entries(Tag.EndMap, inner)
        return
      case Tag.BeginSet:
        this.entries(Tag.EndSet, inner)
        return
      case Tag.ArrayBuffer:
      case Tag.ResizableArrayBuffer: {
        const byteLength = this.varint()
        if (t === Tag.ResizableArrayBuffer) {
          const maxByteLength = this.varint()
          if (maxByteLength < byteLength || maxByteLength > this.bytes.byteLength) {
            this.refuse(`resizable ArrayBuffer with maximum ${maxByteLength}`)
          }
        }
        this.skip(byteLength, 'an ArrayBuffer')
        if (this.pos < this.bytes.byteLength && this.peekTag() === Tag.ArrayBufferView) {
          this.tag()
          this.byte() // subtag (the view's type)
          const offset = this.varint()
          const length = this.varint()
          if (this.version >= 14) this.varint() // flags
          if (offset + length > byteLength) this.refuse('view beyond its ArrayBuffer')
        }
        return
      }
      case Tag.HostObject: {
        const typeIndex = this.varint()
        if (typeIndex > MAX_HOST_TYPE_INDEX) this.refuse(`unknown typed-array type ${typeIndex}`)
        this.skip(this.varint(), 'a typed array')
        return
      }
      case Tag.Error:
        this.error(inner)
        return
      default:
        this.refuse(`unknown or unsupported tag 0x${t.toString(16)}`)
    }
  }

  private error(depth: number): void {
    while (true) {
      const sub = this.byte()
      switch (sub) {
        case ErrorTag.EvalError:
        case ErrorTag.RangeError:
        case ErrorTag.ReferenceError:
        case ErrorTag.SyntaxError:
        case ErrorTag.TypeError:
        case ErrorTag.UriError:
          break
        case ErrorTag.Message:
        case ErrorTag.Stack:
          this.string(depth)
          break
        case ErrorTag.Cause:
          this.value(depth)
          break
        case ErrorTag.End:
          return
        default:
          this.refuse(`unknown error field 0x${sub.toString(16)}`)
      }
    }
  }
}

/**
 * Throws BadValueError unless `bytes` is a v8-serialized value whose declared
 * sizes are all backed by bytes (see the file comment). Linear in the size.
 */
export function scanValue(bytes: Uint8Array): void {
  try {
    new Scanner(bytes).scan()
  } catch (err) {
    // A stack overflow before MAX_DEPTH (a caller deep in its own stack): still just a refusal.
    if (err instanceof RangeError) {
      throw new BadValueError(`cannot decode value (${bytes.byteLength} bytes): nested too deeply`, {
        cause: err,
      })
    }
    throw err
  }
}
