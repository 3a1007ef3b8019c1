import { describe, expect, test } from 'vitest'
import {
  blockReason,
  classKey,
  fits,
  fitsNode,
  ResourcePool,
  slotCost,
} from '../../src/scheduler/resources.ts'
import { capacity } from './helpers.ts'

const r = (cpu: number, gpu = 0, memoryMB = 0) => ({ cpu, gpu, memoryMB })

describe('slot cost and fit', () => {
  test('a task takes at least one whole slot', () => {
    expect(slotCost(r(0))).toBe(1)
    expect(slotCost(r(0.5))).toBe(1)
    expect(slotCost(r(2))).toBe(2)
    expect(slotCost(r(2.5))).toBe(3)
  })

  test('fits checks slots, GPUs and memory against free means', () => {
    expect(fits(r(1, 0, 100), r(1, 0, 100))).toBe(true)
    expect(fits(r(2, 0, 100), r(1, 0, 100))).toBe(false)
    expect(fits(r(1, 1, 100), r(1, 0, 100))).toBe(false)
    expect(fits(r(1, 0, 101), r(1, 0, 100))).toBe(false)
  })

  test('class keys separate resource shapes', () => {
    expect(classKey(r(1, 0, 10))).toBe(classKey(r(1, 0, 10)))
    expect(classKey(r(1, 0, 10))).not.toBe(classKey(r(1, 1, 10)))
  })

  test('fitsNode compares with a node total', () => {
    expect(fitsNode(r(4, 1, 1000), { slots: 4, gpus: 1, memoryMB: 1000 })).toBe(true)
    expect(fitsNode(r(4, 2, 1000), { slots: 4, gpus: 1, memoryMB: 1000 })).toBe(false)
  })
})

describe('blockReason', () => {
  test('empty when some node fits', () => {
    expect(
      blockReason(r(1, 1), [
        { slots: 1, gpus: 0, memoryMB: 10 },
        { slots: 2, gpus: 1, memoryMB: 10 },
      ]),
    ).toBe('')
  })

  test('names the missing GPU and counts the nodes', () => {
    const nodes = Array.from({ length: 3 }, () => ({ slots: 8, gpus: 0, memoryMB: 1000 }))
    expect(blockReason(r(1, 1), nodes)).toBe(
      'needs 1 GPU; no node in the mesh advertises a GPU (3 nodes known)',
    )
    expect(blockReason(r(1, 2), [{ slots: 8, gpus: 1, memoryMB: 10 }])).toBe(
      'needs 2 GPUs; no node in the mesh has 2 GPUs (at most 1) (1 node known)',
    )
  })

  test('names memory, then slots, then the combination', () => {
    const one = [{ slots: 2, gpus: 1, memoryMB: 100 }]
    expect(blockReason(r(1, 0, 200), one)).toBe(
      'needs 200 MB of memory; the largest node has 100 MB (1 node known)',
    )
    expect(blockReason(r(4, 0, 10), one)).toBe('needs 4 CPU slots; the largest node has 2 (1 node known)')
    const two = [
      { slots: 8, gpus: 0, memoryMB: 100 },
      { slots: 1, gpus: 1, memoryMB: 100 },
    ]
    expect(blockReason(r(4, 1, 10), two)).toMatch(/no single node has all of them \(2 nodes known\)/)
  })
})

describe('ResourcePool', () => {
  test('assigns whole GPUs by index and never twice', () => {
    const pool = new ResourcePool({
      slots: 4,
      memoryMB: 1000,
      gpus: [
        { index: 3, name: 'a' },
        { index: 5, name: 'b' },
      ],
    })
    const a = pool.acquire(r(1, 1, 100))
    const b = pool.acquire(r(1, 1, 100))
    expect([a, b]).toEqual([[3], [5]])
    expect(pool.freeGpus).toBe(0)
    expect(pool.canStart(r(1, 1), 1)).toBe(false)
    pool.release(r(1, 1, 100), a)
    expect(pool.acquire(r(1, 1, 100))).toEqual([3])
  })

  test('memory is strict; CPU slots may be oversubscribed by depth for GPU-less tasks only', () => {
    const pool = new ResourcePool(capacity(2, 300, 1))
    expect(pool.canStart(r(1, 0, 400), 8)).toBe(false)
    pool.acquire(r(1, 0, 100))
    pool.acquire(r(1, 0, 100))
    expect(pool.canStart(r(1, 0, 50), 1)).toBe(false)
    expect(pool.canStart(r(1, 0, 50), 8)).toBe(true)
    expect(pool.canStart(r(1, 1, 50), 8)).toBe(false)
    expect(pool.freeSlots).toBe(0)
    expect(pool.free()).toEqual({ cpu: 0, gpu: 1, memoryMB: 100 })
  })

  test('check() catches accounting that does not match the running tasks', () => {
    const pool = new ResourcePool(capacity(2, 300, 1))
    const gpus = pool.acquire(r(1, 1, 100))
    expect(() => pool.check([{ res: r(1, 1, 100), gpus }])).not.toThrow()
    expect(() => pool.check([])).toThrow(/GPU|slots/)
  })
})
