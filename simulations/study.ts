/**
 * `npm run sim -- study [--quick] [--seed n]`: the study in
 * simulations/README.md. Scale from 10 to 10,000 nodes per strategy, the
 * gossip model at 1,000 nodes, churn (10% of nodes crash), and one run of
 * each other scenario. Records go to simulations/out/ (reused when the
 * scheduler sources have not changed), plots to simulations/plots/, the
 * tables to stdout and simulations/out/study.md.
 */
import { mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { OUT_DIR, type RunResult, runScenario, SIM_DIR } from './cli.ts'
import type { RunRecord } from './core/record.ts'
import type { StrategyName } from './core/sim.ts'
import { ganttPlot, utilizationPlot } from './report/plots.ts'
import { lineChart, type Series } from './report/svg.ts'

export const PLOTS_DIR = join(SIM_DIR, 'plots')
const ALL: StrategyName[] = ['gridnode', 'central', 'random-push']

export interface StudyOptions {
  quick: boolean
  seed: number
}

interface Row {
  nodes: number
  gossip: string
  r: RunResult
}

export function runStudy(o: StudyOptions): number {
  mkdirSync(PLOTS_DIR, { recursive: true })
  const md: string[] = []
  const sizes = o.quick ? [10, 30, 100] : [10, 30, 100, 300, 1000, 3000, 10_000]
  const rows: Row[] = []
  for (const n of sizes) {
    for (const r of runScenario('scale', o.seed, n, ALL, { reuse: true }))
      rows.push({ nodes: n, gossip: gossipOf(r.record), r })
  }
  md.push('### Scale (scenario `scale`)', '', scaleTable(rows), '')
  writeFileSync(join(PLOTS_DIR, 'scale-makespan-ratio.svg'), ratioPlot(rows))
  writeFileSync(join(PLOTS_DIR, 'scale-messages-per-task.svg'), messagesPlot(rows))
  const flagship = o.quick ? 100 : 1000
  const flag = rows.filter((x) => x.nodes === flagship).map((x) => x.r.record)
  writeFileSync(
    join(PLOTS_DIR, `utilization-scale-${flagship}.svg`),
    utilizationPlot(flag, `scale, ${flagship} heterogeneous nodes, heavy-tailed tasks: slot utilization`),
  )
  for (const r of rows.filter((x) => x.nodes === 10).map((x) => x.r.record)) {
    const g = ganttPlot(r)
    if (g !== undefined) writeFileSync(join(PLOTS_DIR, `gantt-scale-10-${r.strategy}.svg`), g)
  }

  // At the flagship size the default is already all-to-all: add the two bounded models beside it.
  const gossipRows: Row[] = rows.filter((x) => x.nodes === flagship && x.r.record.strategy === 'gridnode')
  for (const g of ['32+owners', '32']) {
    const [r] = runScenario('scale', o.seed, flagship, ['gridnode'], { reuse: true, gossip: g })
    gossipRows.push({ nodes: flagship, gossip: g, r })
  }
  md.push(`### Gossip model at ${flagship} nodes (gridnode)`, '', scaleTable(gossipRows), '')

  const churnNodes = o.quick ? 100 : 1000
  const churn = runScenario('churn', o.seed, churnNodes, ALL, { reuse: true })
  const calm = rows.filter((x) => x.nodes === churnNodes)
  md.push(
    `### Churn at ${churnNodes} nodes (scenario \`churn\`: 10% of nodes crash during the job)`,
    '',
    churnTable(churn, calm),
    '',
  )
  writeFileSync(
    join(PLOTS_DIR, `utilization-churn-${churnNodes}.svg`),
    utilizationPlot(
      churn.map((r) => r.record),
      `churn, ${churnNodes} nodes, 10% crash between 20% and 60% of the lower bound`,
    ),
  )

  const others: RunResult[] = []
  for (const s of ['uniform', 'gpu-mix', 'multi-owner', 'dag', 'faults'])
    others.push(...runScenario(s, o.seed, undefined, ALL, { reuse: true }))
  others.push(...runScenario('owner-crash', o.seed, undefined, ['gridnode'], { reuse: true }))
  md.push('### Other scenarios (default sizes)', '', otherTable(others), '')

  const all = [...new Set([...rows, ...gossipRows].map((x) => x.r))].concat(churn, others)
  md.push('### Simulator speed', '', speedTable(all), '')
  const text = md.join('\n')
  process.stdout.write(`${text}\n`)
  writeFileSync(join(OUT_DIR, 'study.md'), `${text}\n`)
  const bad = all.filter((r) => r.record.outcome !== 'ok')
  for (const b of bad)
    process.stderr.write(`${b.record.scenario} ${b.record.strategy} ${b.record.nodes}: ${b.record.outcome}\n`)
  return bad.length === 0 ? 0 : 1
}

function gossipOf(r: RunRecord): string {
  const g = (r.knobs.network as { gossip: { mode: string; peers?: number; ownersToAll?: boolean } }).gossip
  if (r.strategy !== 'gridnode') return '-'
  return g.mode === 'all' ? 'all' : `${g.peers}${g.ownersToAll ? '+owners' : ''}`
}

function f(x: number, d = 2): string {
  return Number.isFinite(x) ? x.toFixed(d) : String(x)
}

function scaleTable(rows: Row[]): string {
  const out = [
    '| nodes | strategy | gossip | makespan s | ratio | list ideal | LPT | steal msgs/task | sched msgs/task | all msgs/task | utilization | latency mean / p99 s | run twice | events/s |',
    '| ---: | --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const { nodes, gossip, r } of rows) {
    const m = r.record.metrics
    const ref = r.record.reference
    out.push(
      `| ${nodes} | ${r.record.strategy} | ${gossip} | ${f(m.makespanMs / 1000)} | ${f(m.makespanRatio)} | ${ref ? f(ref.listRatio) : '-'} | ${ref ? f(ref.lptRatio) : '-'} | ${f(m.stealMessagesPerTask)} | ${f(m.schedulingMessagesPerTask)} | ${f(m.messagesPerTask, 1)} | ${f(m.utilization)} | ${f(m.meanLatencyMs / 1000)} / ${f(m.p99LatencyMs / 1000)} | ${m.tasksRunTwice} | ${Math.round(r.perf.eventsPerSec)} |`,
    )
  }
  return out.join('\n')
}

function churnTable(churn: RunResult[], calm: Row[]): string {
  const out = [
    '| strategy | crashed | lost | run twice | wasted slot-s (share) | makespan s | same seed, no churn s | makespan cost | ratio |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of churn) {
    const m = r.record.metrics
    const base = calm.find((c) => c.r.record.strategy === r.record.strategy)?.r.record.metrics.makespanMs
    const cost = base === undefined ? '-' : `${f((100 * (m.makespanMs - base)) / base, 1)}%`
    out.push(
      `| ${r.record.strategy} | ${r.record.faults.crashes} | ${m.tasksLost} | ${m.tasksRunTwice} | ${f(m.wastedSlotMs / 1000, 0)} (${f(100 * m.wastedWorkShare, 1)}%) | ${f(m.makespanMs / 1000)} | ${base === undefined ? '-' : f(base / 1000)} | ${cost} | ${f(m.makespanRatio)} |`,
    )
  }
  return out.join('\n')
}

function otherTable(rs: RunResult[]): string {
  const out = [
    '| scenario | nodes | strategy | outcome | ratio | steal msgs/task | lost | run twice | latency mean / p99 s |',
    '| --- | ---: | --- | --- | ---: | ---: | ---: | ---: | ---: |',
  ]
  for (const r of rs) {
    const m = r.record.metrics
    out.push(
      `| ${r.record.scenario} | ${r.record.nodes} | ${r.record.strategy} | ${r.record.outcome} | ${f(m.makespanRatio)} | ${f(m.stealMessagesPerTask)} | ${m.tasksLost} | ${m.tasksRunTwice} | ${f(m.meanLatencyMs / 1000)} / ${f(m.p99LatencyMs / 1000)} |`,
    )
  }
  return out.join('\n')
}

function speedTable(rs: RunResult[]): string {
  const g = [...new Set(rs)]
    .filter((r) => r.record.strategy === 'gridnode')
    .sort((a, b) => b.perf.steps - a.perf.steps)
  const out = ['| run | events | wall s | events/s |', '| --- | ---: | ---: | ---: |']
  for (const r of g.slice(0, 8)) {
    out.push(
      `| ${r.record.scenario}, ${r.record.nodes} nodes, gridnode, gossip ${gossipOf(r.record)} | ${r.perf.steps} | ${f(r.perf.wallMs / 1000, 1)} | ${Math.round(r.perf.eventsPerSec)} |`,
    )
  }
  return out.join('\n')
}

function ratioPlot(rows: Row[]): string {
  const series: Series[] = ALL.map((s) => ({
    name: s,
    points: rows
      .filter((x) => x.r.record.strategy === s)
      .map((x): [number, number] => [x.nodes, x.r.record.metrics.makespanRatio]),
  }))
  const ref = rows.filter((x) => x.r.record.strategy === 'gridnode' && x.r.record.reference !== null)
  series.push({
    name: 'FIFO list ideal',
    color: '#777',
    dashed: true,
    points: ref.map((x): [number, number] => [x.nodes, x.r.record.reference?.listRatio ?? 1]),
  })
  series.push({
    name: 'LPT (cost-aware) ideal',
    color: '#bbb',
    dashed: true,
    points: ref.map((x): [number, number] => [x.nodes, x.r.record.reference?.lptRatio ?? 1]),
  })
  return lineChart({
    title: 'Makespan / lower bound (heterogeneous, heavy-tailed; gossip all-to-all up to 1,000 nodes)',
    xLabel: 'nodes',
    yLabel: 'makespan / lower bound',
    logX: true,
    logY: true,
    yMin: 0.9,
    series,
    refs: [{ y: 1.1, label: 'target 1.1' }],
  })
}

function messagesPlot(rows: Row[]): string {
  const series: Series[] = ALL.map((s) => ({
    name: `${s}: placement`,
    color: { gridnode: '#1b7837', central: '#c51b7d', 'random-push': '#2166ac' }[s],
    points: rows
      .filter((x) => x.r.record.strategy === s)
      .map((x): [number, number] => [x.nodes, Math.max(0.001, x.r.record.metrics.schedulingMessagesPerTask)]),
  }))
  series.push({
    name: 'gridnode: steals only',
    color: '#5aae61',
    points: rows
      .filter((x) => x.r.record.strategy === 'gridnode')
      .map((x): [number, number] => [x.nodes, Math.max(0.001, x.r.record.metrics.stealMessagesPerTask)]),
  })
  series.push({
    name: 'gridnode: all (adverts too)',
    color: '#1b7837',
    dashed: true,
    points: rows
      .filter((x) => x.r.record.strategy === 'gridnode')
      .map((x): [number, number] => [x.nodes, x.r.record.metrics.messagesPerTask]),
  })
  return lineChart({
    title: 'Messages per task (gossip: all-to-all up to 1,000 nodes, 32+owners beyond)',
    xLabel: 'nodes',
    yLabel: 'messages per task',
    logX: true,
    logY: true,
    yMin: 0.001,
    series,
    refs: [{ y: 2, label: 'target: 2 steal messages/task' }],
  })
}
