import { describe, expect, test } from 'vitest'
import { BoundedMap, Fifo, getOrCreate } from '../../src/scheduler/collections.ts'

describe('Fifo', () => {
  test('shifts in push order and reports its length', () => {
    const q = new Fifo<number>()
    expect(q.peek()).toBeUndefined()
    for (let i = 0; i < 5000; i++) q.push(i)
    expect(q.length).toBe(5000)
    for (let i = 0; i < 3000; i++) expect(q.shift()).toBe(i)
    expect(q.peek()).toBe(3000)
    q.push(5000)
    expect(q.length).toBe(2001)
    for (let i = 3000; i <= 5000; i++) expect(q.shift()).toBe(i)
    expect(q.shift()).toBeUndefined()
    expect(q.length).toBe(0)
  })
})

describe('getOrCreate', () => {
  test('creates once, then returns the same value', () => {
    const m = new Map<string, number[]>()
    getOrCreate(m, 'a', () => []).push(1)
    getOrCreate(m, 'a', () => []).push(2)
    expect(m.get('a')).toEqual([1, 2])
  })
})

describe('BoundedMap', () => {
  test('forgets the oldest keys beyond its capacity', () => {
    const m = new BoundedMap<string, number>(2)
    m.set('a', 1)
    m.set('b', 2)
    m.set('a', 3)
    m.set('c', 4)
    expect([m.has('a'), m.get('b'), m.get('c'), m.size]).toEqual([false, 2, 4, 2])
  })
})
