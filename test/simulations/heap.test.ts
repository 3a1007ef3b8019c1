import { describe, expect, it } from 'vitest'
import { EventHeap } from '../../simulations/core/heap.ts'
import { Rng } from '../../simulations/core/rng.ts'

describe('EventHeap', () => {
  it('pops in time order, ties in insertion order, and grows', () => {
    const h = new EventHeap(2)
    const rng = new Rng(1)
    const want: Array<[number, number]> = []
    for (let i = 0; i < 5000; i++) {
      const at = Math.floor(rng.next() * 100)
      h.push(at, 0, i, 0, 0, undefined)
      want.push([at, i])
    }
    want.sort((a, b) => a[0] - b[0] || a[1] - b[1])
    const got: Array<[number, number]> = []
    while (h.pop()) got.push([h.top.at, h.top.a])
    expect(got).toEqual(want)
    expect(h.size).toBe(0)
  })

  it('reuses freed slots when pushes and pops interleave', () => {
    const h = new EventHeap(4)
    for (let i = 0; i < 1000; i++) {
      h.push(i, 1, i, 0, 0, { i })
      h.pop()
      expect(h.top.obj).toEqual({ i })
    }
    expect(h.capacity).toBe(4)
  })

  it('refuses times that are not finite', () => {
    expect(() => new EventHeap().push(Number.NaN, 0, 0, 0, 0, undefined)).toThrow()
  })
})
