/**
 * The event queue: a binary min-heap on (time, sequence) over a slab of event
 * records kept in parallel typed arrays, so pushing and popping an event
 * allocates nothing once the arrays have grown. The sequence number breaks
 * ties in insertion order, which keeps runs deterministic.
 *
 * An event is a kind (small integer), two integer arguments, a float
 * argument and one object reference; what they mean is the world's business.
 */

export interface EventSlot {
  kind: number
  a: number
  b: number
  x: number
  obj: unknown
  at: number
}

export class EventHeap {
  private time: Float64Array
  private seq: Float64Array
  private kind: Int32Array
  private argA: Int32Array
  private argB: Int32Array
  private argX: Float64Array
  private obj: unknown[]
  /** Heap of slab indexes. */
  private heap: Int32Array
  private free: Int32Array
  private freeCount = 0
  private slabUsed = 0
  private nextSeq = 0
  size = 0
  /** The popped event, valid until the next pop (one record, reused). */
  readonly top: EventSlot = { kind: 0, a: 0, b: 0, x: 0, obj: undefined, at: 0 }

  constructor(capacity = 1024) {
    this.time = new Float64Array(capacity)
    this.seq = new Float64Array(capacity)
    this.kind = new Int32Array(capacity)
    this.argA = new Int32Array(capacity)
    this.argB = new Int32Array(capacity)
    this.argX = new Float64Array(capacity)
    this.obj = new Array(capacity).fill(undefined)
    this.heap = new Int32Array(capacity)
    this.free = new Int32Array(capacity)
  }

  get capacity(): number {
    return this.time.length
  }

  push(at: number, kind: number, a: number, b: number, x: number, obj: unknown): void {
    if (!(at >= 0) || !Number.isFinite(at)) throw new Error(`event time ${at} is not a finite time`)
    const slot = this.alloc()
    this.time[slot] = at
    this.seq[slot] = this.nextSeq++
    this.kind[slot] = kind
    this.argA[slot] = a
    this.argB[slot] = b
    this.argX[slot] = x
    this.obj[slot] = obj
    let i = this.size++
    const h = this.heap
    while (i > 0) {
      const p = (i - 1) >> 1
      const ps = h[p]
      if (this.less(ps, slot)) break
      h[i] = ps
      i = p
    }
    h[i] = slot
  }

  /** Time of the earliest event, or Infinity. */
  peekTime(): number {
    return this.size === 0 ? Number.POSITIVE_INFINITY : this.time[this.heap[0]]
  }

  /** Removes the earliest event into `top`; false when empty. */
  pop(): boolean {
    if (this.size === 0) return false
    const h = this.heap
    const slot = h[0]
    const t = this.top
    t.at = this.time[slot]
    t.kind = this.kind[slot]
    t.a = this.argA[slot]
    t.b = this.argB[slot]
    t.x = this.argX[slot]
    t.obj = this.obj[slot]
    this.obj[slot] = undefined
    this.free[this.freeCount++] = slot
    const last = h[--this.size]
    const n = this.size
    let i = 0
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) break
      const r = l + 1
      let m = l
      if (r < n && this.less(h[r], h[l])) m = r
      if (this.less(last, h[m])) break
      h[i] = h[m]
      i = m
    }
    if (n > 0) h[i] = last
    return true
  }

  private less(a: number, b: number): boolean {
    const ta = this.time[a]
    const tb = this.time[b]
    return ta < tb || (ta === tb && this.seq[a] < this.seq[b])
  }

  private alloc(): number {
    if (this.freeCount > 0) return this.free[--this.freeCount]
    if (this.slabUsed === this.time.length) this.grow()
    return this.slabUsed++
  }

  private grow(): void {
    const n = this.time.length * 2
    this.time = growF64(this.time, n)
    this.seq = growF64(this.seq, n)
    this.argX = growF64(this.argX, n)
    this.kind = growI32(this.kind, n)
    this.argA = growI32(this.argA, n)
    this.argB = growI32(this.argB, n)
    this.heap = growI32(this.heap, n)
    this.free = growI32(this.free, n)
    const obj = new Array(n).fill(undefined)
    for (let i = 0; i < this.obj.length; i++) obj[i] = this.obj[i]
    this.obj = obj
  }
}

function growF64(a: Float64Array, n: number): Float64Array {
  const b = new Float64Array(n)
  b.set(a)
  return b
}

function growI32(a: Int32Array, n: number): Int32Array {
  const b = new Int32Array(n)
  b.set(a)
  return b
}
