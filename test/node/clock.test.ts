/**
 * The driver runs on the clock it is given: with a ManualClock its scheduler
 * timer fires only when the test moves time, and every event carries that time.
 */
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, test } from 'vitest'
import { ManualClock } from '../../src/node/clock.ts'
import { defaultConfig } from '../../src/node/config/schema.ts'
import type { GridLibp2p } from '../../src/node/create-node.ts'
import { Driver } from '../../src/node/driver.ts'
import type { SchedulerEvent } from '../../src/scheduler/types.ts'

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

function driver(clock: ManualClock) {
  const dir = mkdtempSync(join(tmpdir(), 'gridnode-clock-'))
  dirs.push(dir)
  const node = { peerId: { toString: () => 'n-self' }, getPeers: () => [] } as unknown as GridLibp2p
  const d = new Driver(node, {
    config: { ...defaultConfig(dir), advertIntervalMs: 1000 },
    capacity: { cores: 2, slots: 2, memoryTotalMB: 4096, memoryFreeMB: 4096, load1: 0, gpus: [] } as never,
    log: pino({ level: 'silent' }),
    dbPath: join(dir, 'jobs.db'),
    clock,
  })
  const events: SchedulerEvent[] = []
  d.observe({ step: (e) => events.push(e) })
  return { d, events }
}

describe('ManualClock', () => {
  test('fires timers in time order as it advances; intervals repeat; cleared ones never fire', () => {
    const c = new ManualClock(100)
    const fired: string[] = []
    c.setTimeout(() => fired.push(`b@${c.now()}`), 20)
    c.setTimeout(() => fired.push(`a@${c.now()}`), 10)
    const gone = c.setTimeout(() => fired.push('never'), 5)
    const every = c.setInterval(() => fired.push(`i@${c.now()}`), 15)
    c.clear(gone)
    c.advance(31)
    expect(fired).toEqual(['a@110', 'i@115', 'b@120', 'i@130'])
    c.clear(every)
    c.advance(100)
    expect(fired).toHaveLength(4)
    expect(c.now()).toBe(231)
  })
})

describe('the driver on a manual clock', () => {
  test('events carry the clock’s time and its timer fires only when time moves', () => {
    const clock = new ManualClock(1_000_000)
    const { d, events } = driver(clock)
    d.peerConnected('n-peer')
    expect(events.map((e) => [e.type, e.at])).toEqual([['peer-connected', 1_000_000]])
    expect(clock.pending).toBe(1)
    clock.advance(999)
    expect(events.filter((e) => e.type === 'tick')).toEqual([])
    clock.advance(5_000)
    const ticks = events.filter((e) => e.type === 'tick')
    expect(ticks.length).toBeGreaterThan(0)
    expect(ticks.every((e) => e.at > 1_000_000 && e.at <= clock.now())).toBe(true)
    void d.stop()
  })
})
