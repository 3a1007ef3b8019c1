import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import { PolicyController } from '../../../src/node/policy/controller.ts'
import { type ActivitySample, IdleMonitor } from '../../../src/node/policy/idle.ts'
import type { NodePolicy } from '../../../src/scheduler/types.ts'

const silent = { info() {}, warn() {}, debug() {}, error() {} } as never
const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

/** A probe whose CPU counters the test advances. */
class FakeProbe {
  s: ActivitySample = { at: 0, total: 0, busy: 0, ours: 0 }
  sample(): ActivitySample {
    return { ...this.s }
  }
  /** `ms` pass with `outside` and `ours` shares of all CPU busy. */
  advance(ms: number, outside: number, ours = 0): void {
    const total = ms
    this.s = {
      at: this.s.at + ms,
      total: this.s.total + total,
      busy: this.s.busy + total * (outside + ours),
      ours: this.s.ours + total * ours,
    }
  }
}

function controller(over: { hour?: number; slots?: number; sandbox?: boolean } = {}) {
  const dataDir = mkdtempSync(join(tmpdir(), 'gn-ctl-'))
  dirs.push(dataDir)
  const probe = new FakeProbe()
  const seen: NodePolicy[] = []
  const c = new PolicyController({
    dataDir,
    slots: over.slots ?? 4,
    log: silent,
    monitor: new IdleMonitor(probe),
    sandbox: () => ({ acceptsForeign: over.sandbox ?? true, reason: 'no sandbox: bwrap not found' }),
    now: () => new Date(2026, 0, 1, over.hour ?? 12),
  })
  c.start({ setPolicy: (p) => seen.push(p) })
  c.stop()
  return { c, probe, seen }
}

describe('idle monitor', () => {
  test('CPU used outside gridnode over the window; our own tree does not count', () => {
    const probe = new FakeProbe()
    const m = new IdleMonitor(probe)
    m.check(10_000, 0.25)
    probe.advance(5000, 0.1, 0.8)
    expect(m.check(10_000, 0.25)).toMatchObject({ busy: false })
    probe.advance(5000, 0.9)
    const busy = m.check(10_000, 0.25)
    expect(busy.busy).toBe(true)
    expect(busy.cpuOutside).toBeCloseTo(0.5)
    // The busy stretch slides out of the window.
    for (let i = 0; i < 4; i++) probe.advance(5000, 0)
    expect(m.check(10_000, 0.25).busy).toBe(false)
  })
})

describe('policy controller', () => {
  test('defaults: accepts everything, lends every slot', () => {
    const { seen } = controller()
    expect(seen).toHaveLength(1)
    expect(seen[0]).toMatchObject({ foreignSlots: 4, suspended: false, accepts: { foreign: true } })
  })

  test('set applies at once; trust lists become accepts', () => {
    const { c, seen } = controller()
    c.set('command', 'none')
    expect(seen.at(-1)?.accepts.command).toEqual({ all: false, peers: [] })
    c.set('max-cpu-share', '0.5')
    expect(seen.at(-1)?.foreignSlots).toBe(2)
    c.set('hours', '19-07')
    expect(seen.at(-1)?.foreignSlots).toBe(0)
    expect(() => c.set('when', 'never')).toThrow(/when "never"/)
  })

  test('no sandbox: no foreign tasks, with the reason', () => {
    const { seen } = controller({ sandbox: false })
    expect(seen[0].accepts).toMatchObject({ foreign: false, reason: 'no sandbox: bwrap not found' })
  })

  test('when idle: busy suspends and lends nothing; idle again lends again', () => {
    const { c, probe, seen } = controller()
    c.set('when', 'idle')
    c.set('idleWindow', '10s')
    c.set('grace', '5s')
    probe.advance(5000, 0.9)
    c.apply('tick')
    expect(seen.at(-1)).toMatchObject({ suspended: true, foreignSlots: 0, handBackAfterMs: 5000 })
    expect(c.view().effective.activity.why).toMatch(/CPU used outside gridnode 90%/)
    for (let i = 0; i < 3; i++) probe.advance(5000, 0)
    c.apply('tick')
    expect(seen.at(-1)).toMatchObject({ suspended: false, foreignSlots: 4 })
    // The test hook overrides the measurement.
    c.monitor.forced = true
    c.apply('hook')
    expect(seen.at(-1)?.suspended).toBe(true)
  })
})
