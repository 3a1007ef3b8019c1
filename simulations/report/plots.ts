/** The study's pictures, drawn from run records. */
import type { RunRecord } from '../core/record.ts'
import { gantt, lineChart } from './svg.ts'

/** Slot utilization over time, one line per strategy (time from the first submit, in s). */
export function utilizationPlot(records: RunRecord[], title: string): string {
  return lineChart({
    title,
    xLabel: 'time since submit (s)',
    yLabel: 'busy slots / live slots',
    yMin: 0,
    yMax: 1.05,
    series: records.map((r) => ({
      name: `${r.strategy} (x${r.metrics.makespanRatio})`,
      color: colorOf(r.strategy),
      points: r.series.utilization.map((u, i): [number, number] => [((i + 0.5) * r.series.binMs) / 1000, u]),
    })),
  })
}

export function ganttPlot(r: RunRecord): string | undefined {
  if (r.gantt === undefined || r.ganttNodes === undefined) return undefined
  const t0 = r.series.t0Ms
  const t1 = Math.max(t0 + r.metrics.makespanMs, ...r.gantt.map((g) => g[3]))
  const lanes = r.ganttNodes.map(() => 0)
  for (const g of r.gantt) lanes[g[0]] = Math.max(lanes[g[0]], g[1] + 1)
  return gantt({
    title: `${r.scenario}, ${r.strategy}: makespan ${r.metrics.makespanMs} ms (x${r.metrics.makespanRatio} of the lower bound)`,
    runs: r.gantt,
    nodeLabels: r.ganttNodes.map((n) => `${n.key} ${n.speed}x`),
    lanesPerNode: r.ganttNodes.map((n, i) => Math.max(n.slots, lanes[i])),
    t0,
    t1,
    lowerBoundAt: t0 + r.lowerBound.ms,
  })
}

function colorOf(strategy: string): string | undefined {
  return { gridnode: '#1b7837', central: '#c51b7d', 'random-push': '#2166ac' }[strategy]
}
