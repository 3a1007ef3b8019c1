import { describe, expect, it } from 'vitest'
import {
  formatDuration,
  formatInputStep,
  formatProgress,
  formatRate,
  ProgressMeter,
  type ProgressView,
} from '../../src/client/progress.ts'

const p = (done: number, failed = 0, total = 100, nodes = 3) => ({
  job: 'j',
  total,
  done,
  failed,
  running: 2,
  nodes,
})

describe('ProgressMeter', () => {
  it('measures tasks per second and the time left from the recent samples', () => {
    const m = new ProgressMeter(0)
    m.update(p(10), 1000)
    const v = m.update(p(30), 2000)
    expect(v.rate).toBeCloseTo(15) // 30 tasks in 2 s
    expect(v.etaMs).toBeCloseTo((70 / 15) * 1000)
    expect(v.elapsedMs).toBe(2000)
  })

  it('counts failed tasks as finished', () => {
    const m = new ProgressMeter(0)
    const v = m.update(p(5, 5), 1000)
    expect(v.rate).toBe(10)
    expect(v.etaMs).toBe(9000)
  })

  it('forgets samples older than the window, so the rate follows a change of pace', () => {
    const m = new ProgressMeter(0)
    m.update(p(50), 1000) // fast start
    for (let t = 2000; t <= 20_000; t += 1000) m.update(p(50 + (t - 1000) / 1000), t)
    expect(m.view(20_000).rate).toBeCloseTo(1, 1)
  })

  it('has no ETA before anything finished, and 0 once all did', () => {
    const m = new ProgressMeter(0)
    expect(m.update(p(0), 500).etaMs).toBeUndefined()
    expect(m.update(p(98, 2), 1500).etaMs).toBe(0)
  })

  it('lets the ETA tick down between events, and says unknown once past it with tasks left', () => {
    const m = new ProgressMeter(0)
    m.update(p(50), 1000)
    expect(m.view(1000).etaMs).toBe(1000)
    expect(m.view(1400).etaMs).toBe(600)
    // Before, "ETA 0s" stood for as long as the last tasks took (a new-user trial: 28 s).
    expect(m.view(5000).etaMs).toBeUndefined()
  })
})

describe('formatProgress', () => {
  const view = (o: Partial<ProgressView>): ProgressView => ({
    total: 1000,
    done: 0,
    failed: 0,
    running: 0,
    nodes: 4,
    rate: 0,
    etaMs: undefined,
    elapsedMs: 0,
    ...o,
  })

  it('shows the bar, done/total, percent, rate, ETA and nodes', () => {
    expect(formatProgress(view({ done: 510, failed: 2, rate: 83.44, etaMs: 5900 }), 10)).toBe(
      '█████░░░░░  512/1000  51%  2 failed  83.4 tasks/s  ETA 6s  4 nodes',
    )
  })

  it('leaves failures out when there are none, and says ? for an unknown ETA', () => {
    expect(formatProgress(view({ nodes: 1 }), 4)).toBe('░░░░  0/1000  0%  0.00 tasks/s  ETA ?  1 node')
  })

  it('shows the tasks running while some are left', () => {
    expect(formatProgress(view({ done: 1, total: 3, running: 2, rate: 0.5, etaMs: 4000, nodes: 3 }), 3)).toBe(
      '█░░  1/3  33%  2 running  0.50 tasks/s  ETA 4s  3 nodes',
    )
  })

  it('says what input files are doing before the job is submitted', () => {
    expect(
      formatInputStep({ file: 'big.bin', index: 0, count: 3, bytes: 200 * 1024 * 1024, step: 'uploading' }),
    ).toBe('input file 1/3: big.bin (209.7 MB), uploading to the daemon…')
    expect(formatInputStep({ file: 'scene/a.txt', index: 0, count: 1, bytes: 12, step: 'present' })).toBe(
      'input file: scene/a.txt (12 B), already on the daemon',
    )
  })

  it('fills the bar at the end', () => {
    expect(formatProgress(view({ total: 3, done: 3, rate: 250, etaMs: 0 }), 4)).toBe(
      '████  3/3  100%  250 tasks/s  ETA 0s  4 nodes',
    )
  })

  it('formats rates and durations for people', () => {
    expect([formatRate(0.456), formatRate(12.34), formatRate(1234.5)]).toEqual(['0.46', '12.3', '1235'])
    expect([
      formatDuration(400),
      formatDuration(59_400),
      formatDuration(75_000),
      formatDuration(7_500_000),
    ]).toEqual(['0s', '59s', '1m15s', '2h05m'])
  })
})
