import { describe, expect, test } from 'vitest'
import { FairQueue, type Queueable, type Slot } from '../../src/scheduler/queue.ts'
import type { ReadyClass, Resources } from '../../src/scheduler/types.ts'

interface Item extends Queueable {
  name: string
}
const cpu: Resources = { cpu: 1, gpu: 0, memoryMB: 0 }
const gpu: Resources = { cpu: 1, gpu: 1, memoryMB: 0 }
const item = (jobId: string, name: string, res = cpu, own = false): Item => ({
  jobId,
  name,
  res,
  own,
  slot: undefined as Slot | undefined,
})
const any = () => true

function drain(q: FairQueue<Item>, fits: (r: Resources) => boolean = any, ownOnly = false): string[] {
  const out: string[] = []
  for (let t = q.pop(fits, ownOnly); t !== undefined; t = q.pop(fits, ownOnly)) out.push(t.name)
  return out
}

describe('FairQueue', () => {
  test('rotates across jobs within a class, FIFO within a job', () => {
    const q = new FairQueue<Item>()
    for (let i = 0; i < 3; i++) q.push(item('big', `b${i}`))
    q.push(item('small', 's0'))
    q.push(item('other', 'o0'))
    expect(drain(q)).toEqual(['b0', 's0', 'o0', 'b1', 'b2'])
    expect(q.size).toBe(0)
  })

  test('serves only classes that fit', () => {
    const q = new FairQueue<Item>()
    q.push(item('j', 'g0', gpu))
    q.push(item('j', 'c0'))
    expect(drain(q, (r) => r.gpu === 0)).toEqual(['c0'])
    expect(q.size).toBe(1)
    expect(q.readyClasses()).toEqual([{ resources: gpu, count: 1 }])
  })

  test('removes arbitrary items in O(1) and keeps counts', () => {
    const q = new FairQueue<Item>()
    const xs = [item('j', 'a'), item('j', 'b'), item('k', 'c', cpu, true)]
    for (const x of xs) q.push(x)
    expect(q.ownSize).toBe(1)
    q.remove(xs[1])
    q.remove(xs[1])
    q.remove(xs[2])
    expect(q.size).toBe(1)
    expect(q.ownSize).toBe(0)
    expect(drain(q)).toEqual(['a'])
    q.push(xs[1])
    expect(drain(q)).toEqual(['b'])
  })

  test('ownOnly takes only items of jobs owned here', () => {
    const q = new FairQueue<Item>()
    q.push(item('theirs', 't0'))
    q.push(item('mine', 'm0', cpu, true))
    q.push(item('mine', 'm1', cpu, true))
    expect(drain(q, any, true)).toEqual(['m0', 'm1'])
    expect(q.size).toBe(1)
  })

  test('countFitting and readyClasses report live items only', () => {
    const q = new FairQueue<Item>()
    const a = item('j', 'a')
    q.push(a)
    q.push(item('j', 'b', gpu))
    q.remove(a)
    expect(q.countFitting(any)).toBe(1)
    expect(q.countFitting((r) => r.gpu === 0)).toBe(0)
    expect(q.readyClasses()).toEqual([{ resources: gpu, count: 1 }])
    expect([...q.items()].map((x) => x.name)).toEqual(['b'])
  })

  test('stays consistent over many pushes, removals and pops', () => {
    const q = new FairQueue<Item>()
    const live = new Set<Item>()
    for (let i = 0; i < 2000; i++) {
      const x = item(`j${i % 7}`, `x${i}`, i % 3 === 0 ? gpu : cpu)
      q.push(x)
      live.add(x)
      if (i % 5 === 0) {
        const first = live.values().next().value as Item
        q.remove(first)
        live.delete(first)
      }
      if (i % 4 === 0) {
        const t = q.pop(any)
        if (t !== undefined) live.delete(t)
      }
    }
    expect(q.size).toBe(live.size)
    expect(new Set(drain(q))).toEqual(new Set([...live].map((x) => x.name)))
  })
})

describe('readyAsAdvertised', () => {
  /** The rule on two readyClasses() lists: same classes in order, no count up, none halved. */
  const stillTrue = (then: ReadyClass[], now: ReadyClass[]) =>
    then.length === now.length &&
    then.every(
      (t, i) =>
        JSON.stringify(t.resources) === JSON.stringify(now[i].resources) &&
        now[i].count <= t.count &&
        now[i].count * 2 > t.count,
    )

  test('agrees with comparing readyClasses() over random pushes, pops and removals', () => {
    const classes: Resources[] = [
      cpu,
      gpu,
      { cpu: 2, gpu: 0, memoryMB: 512 },
      { cpu: 1, gpu: 0, memoryMB: 512 },
    ]
    const text = (r: ReturnType<FairQueue<Item>['readyClasses']>) => JSON.stringify(r)
    let seed = 7
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff
      return seed % n
    }
    const q = new FairQueue<Item>()
    const queued: Item[] = []
    const snapshots = [q.readyClasses()]
    const seen = new Map<string, ReturnType<FairQueue<Item>['readyClasses']>>()
    let same = 0
    let changed = 0
    let movedButTrue = 0
    for (let step = 0; step < 3000; step++) {
      const op = rand(5)
      if (op < 2 || queued.length === 0) {
        const it = item(`j${rand(3)}`, `t${step}`, classes[rand(classes.length)])
        q.push(it)
        queued.push(it)
      } else if (op < 4) {
        const it = q.pop((r) => r === classes[rand(classes.length)] || rand(2) === 0)
        if (it !== undefined) queued.splice(queued.indexOf(it), 1)
      } else {
        const [it] = queued.splice(rand(queued.length), 1)
        q.remove(it)
      }
      const now = q.readyClasses()
      const earlier = seen.get(text(now)) // the same state reached before, when there was one
      for (const snap of [
        ...snapshots.slice(-3),
        ...snapshots.slice(-40, -30),
        ...(earlier ? [earlier] : []),
      ]) {
        const expected = stillTrue(snap, now)
        if (!expected) changed++
        else if (text(snap) === text(now)) same++
        else movedButTrue++
        expect(q.readyAsAdvertised(snap)).toBe(expected)
      }
      snapshots.push(now)
      if (!seen.has(text(now))) seen.set(text(now), now)
    }
    // Both answers are exercised, and "still true" with counts that moved too.
    expect(same).toBeGreaterThan(50)
    expect(changed).toBeGreaterThan(50)
    expect(movedButTrue).toBeGreaterThan(10)
  })
})
