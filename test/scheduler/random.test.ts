import { describe, expect, test } from 'vitest'
import { Random } from '../../src/scheduler/random.ts'

describe('Random', () => {
  test('the same seed gives the same sequence', () => {
    const a = new Random(42)
    const b = new Random(42)
    const xs = Array.from({ length: 100 }, () => a.next())
    expect(Array.from({ length: 100 }, () => b.next())).toEqual(xs)
  })

  test('different seeds differ', () => {
    expect(new Random(1).next()).not.toBe(new Random(2).next())
  })

  test('values lie in [0, 1) and int(n) in [0, n)', () => {
    const r = new Random(7)
    const counts = [0, 0, 0, 0]
    for (let i = 0; i < 4000; i++) {
      const x = r.next()
      expect(x).toBeGreaterThanOrEqual(0)
      expect(x).toBeLessThan(1)
      counts[r.int(4)]++
    }
    for (const c of counts) expect(c).toBeGreaterThan(800)
  })

  test('non-integer and negative seeds are accepted deterministically', () => {
    expect(new Random(-3.7).next()).toBe(new Random(-4).next())
  })
})
