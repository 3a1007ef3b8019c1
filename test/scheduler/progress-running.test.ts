/** A job's `running` count: tasks prefetched into another node's queue are held, not running. */
import { describe, expect, it } from 'vitest'
import { advert, capacity, inputs, Node, pick, spec } from './helpers.ts'

describe('job progress', () => {
  it('counts as running at most what the other nodes advertise as running', () => {
    const a = new Node({ capacity: capacity(1) })
    a.submit(spec('j', 'a'), inputs(10))
    a.feed({ type: 'advert-received', peer: 'b', advert: advert({ slots: 2, freeSlots: 0, running: 2 }) })
    const cmds = a.feed({
      type: 'steal-requested',
      from: 'b',
      requestId: 1,
      free: { cpu: 4, gpu: 0, memoryMB: 8192 },
      max: 8,
    })
    const granted = pick(cmds, 'reply-steal')[0].batch.tasks.length
    expect(granted).toBeGreaterThan(2)
    // One running here, and b runs at most the 2 it advertises; the rest wait in b's queue.
    expect(a.s.jobProgress('j')?.running).toBe(3)
  })
})
