import { describe, expect, test } from 'vitest'
import { newJobId } from '../../src/domain/job-id.ts'

describe('job ids', () => {
  test('a time prefix that sorts by age, then 10 hex digits; no two alike in a burst', () => {
    const ids = Array.from({ length: 20_000 }, () => newJobId())
    for (const id of ids.slice(0, 100)) expect(id).toMatch(/^[0-9a-z]{8,9}-[0-9a-f]{10}$/)
    expect(new Set(ids).size).toBe(ids.length)
    const [time] = ids[0].split('-')
    expect(Math.abs(Number.parseInt(time, 36) - Date.now())).toBeLessThan(60_000)
    const later = ids.map((id) => id.split('-')[0])
    expect([...later].sort()).toEqual(later) // same length prefixes (until 2059), so text order is time order
  })

  test('every digit of the random part is random (none is a UUID version or variant digit)', () => {
    const seen = Array.from({ length: 10 }, () => new Set<string>())
    for (let i = 0; i < 2000; i++) {
      const random = newJobId().split('-')[1]
      for (let k = 0; k < random.length; k++) seen[k].add(random[k])
    }
    expect(seen.map((s) => s.size)).toEqual(Array(10).fill(16))
  })
})
