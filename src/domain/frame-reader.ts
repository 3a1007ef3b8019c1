/**
 * Length-prefixed frames (a 4-byte big-endian length, then that many bytes)
 * cut out of a byte stream: the API channel's (./api-frames.ts) and the
 * sandboxed worker's pipes (src/executor/sandbox/frames.ts).
 */

/** Bytes that break the framing or a frame's layout: the stream cannot be read any further. */
export class FrameError extends Error {}

/**
 * Cuts a byte stream into frames. A frame's length is checked against `maxFrame` as soon as its
 * prefix arrives, so an oversized one is refused before it is buffered.
 */
export class FrameReader {
  private readonly maxFrame: number
  private readonly minFrame: number
  private chunks: Buffer[] = []
  private buffered = 0
  /** The length of the frame being read; -1 while its prefix is still arriving. */
  private need = -1

  /** `minFrame`: the shortest frame the format allows (a shorter length breaks it too). */
  constructor(maxFrame: number, minFrame = 0) {
    this.maxFrame = maxFrame
    this.minFrame = minFrame
  }

  /** The whole frames `chunk` completes, without their length prefixes. Throws FrameError on a bad length. */
  push(chunk: Buffer): Buffer[] {
    if (chunk.length > 0) {
      this.chunks.push(chunk)
      this.buffered += chunk.length
    }
    const out: Buffer[] = []
    for (;;) {
      if (this.need < 0) {
        if (this.buffered < 4) break
        const n = this.take(4).readUInt32BE(0)
        if (n < this.minFrame || n > this.maxFrame)
          throw new FrameError(
            `a ${n}-byte frame is outside the limits (${this.minFrame} to ${this.maxFrame})`,
          )
        this.need = n
      }
      if (this.buffered < this.need) break
      out.push(this.take(this.need))
      this.need = -1
    }
    return out
  }

  /** Bytes held for a frame not yet complete. */
  get pending(): number {
    return this.buffered
  }

  /** The next `n` buffered bytes: a view when one chunk holds them, else one copy. */
  private take(n: number): Buffer {
    const first = this.chunks[0]
    let out: Buffer
    if (first.length >= n) {
      out = first.subarray(0, n)
      if (first.length === n) this.chunks.shift()
      else this.chunks[0] = first.subarray(n)
    } else {
      out = Buffer.allocUnsafe(n)
      let at = 0
      while (at < n) {
        const c = this.chunks[0]
        const k = Math.min(c.length, n - at)
        c.copy(out, at, 0, k)
        at += k
        if (k === c.length) this.chunks.shift()
        else this.chunks[0] = c.subarray(k)
      }
    }
    this.buffered -= n
    return out
  }
}
