/**
 * Small collections: getOrCreate for maps of lists and sets, and an
 * array-backed FIFO with O(1) amortised push and shift, used for deadline
 * queues whose deadlines are appended in non-decreasing order (now + a
 * constant, with now monotonic), so the head is always the earliest.
 */

export function getOrCreate<K, V>(map: Map<K, V>, key: K, make: () => V): V {
  let v = map.get(key)
  if (v === undefined) {
    v = make()
    map.set(key, v)
  }
  return v
}

export class Fifo<T> {
  private items: (T | undefined)[] = []
  private head = 0

  get length(): number {
    return this.items.length - this.head
  }

  push(item: T): void {
    this.items.push(item)
  }

  peek(): T | undefined {
    return this.head < this.items.length ? this.items[this.head] : undefined
  }

  shift(): T | undefined {
    if (this.head >= this.items.length) return undefined
    const item = this.items[this.head]
    this.items[this.head] = undefined
    this.head++
    if (this.head === this.items.length) {
      this.items = []
      this.head = 0
    } else if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head)
      this.head = 0
    }
    return item
  }
}

/** A map that forgets its oldest entries beyond `capacity` (for tombstones of finished jobs). */
export class BoundedMap<K, V> {
  private readonly map = new Map<K, V>()
  private readonly order = new Fifo<K>()
  private readonly capacity: number

  constructor(capacity: number) {
    this.capacity = Math.max(1, capacity)
  }

  get size(): number {
    return this.map.size
  }

  get(key: K): V | undefined {
    return this.map.get(key)
  }

  has(key: K): boolean {
    return this.map.has(key)
  }

  set(key: K, value: V): void {
    if (!this.map.has(key)) {
      this.order.push(key)
      if (this.order.length > this.capacity) {
        const old = this.order.shift()
        if (old !== undefined) this.map.delete(old)
      }
    }
    this.map.set(key, value)
  }
}

/**
 * `bytes`, or a copy of them when they are a view into a bigger buffer (a batch of results from
 * a worker): a value kept a while must not keep the whole batch in memory.
 */
export function ownBytes(bytes: Uint8Array): Uint8Array {
  return bytes.byteLength === bytes.buffer.byteLength ? bytes : bytes.slice()
}
