/**
 * `npm run sim -- <scenario> [--seed n] [--nodes n] [--strategies a,b] [--json]`
 * runs one scenario under each strategy on the same seed: progress on
 * stderr, a JSON record per run and SVG plots in simulations/out/, and with
 * --json the records on stdout. `npm run sim -- list` names the scenarios,
 * `npm run sim -- study` runs the README's study, `npm run sim -- live`
 * the live harness against real daemons.
 *
 * Exit codes (as TigerBeetle's VOPR separates them): 0 ok, 1 a correctness
 * violation, 2 a liveness failure (budget spent, work left), 3 a crash
 * (an exception), 64 a usage error. A failing run prints how to replay it.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { getHeapStatistics } from 'node:v8'
import { type RunRecord, schedulerHash } from './core/record.ts'
import { buildModel, type Perf, runStrategy } from './core/runner.ts'
import { type Outcome, type Progress, STRATEGIES, type StrategyName } from './core/sim.ts'
import { describeModel } from './report/describe.ts'
import { ganttPlot, utilizationPlot } from './report/plots.ts'
import type { GossipSpec, Scenario } from './scenario.ts'
import { SCENARIOS } from './scenarios/index.ts'

export const SIM_DIR = fileURLToPath(new URL('.', import.meta.url))
/** Where records and plots go (GRIDNODE_SIM_OUT overrides, for tests). */
export const OUT_DIR = process.env.GRIDNODE_SIM_OUT ?? join(SIM_DIR, 'out')

const EXIT: Record<Outcome, number> = { ok: 0, correctness: 1, liveness: 2, crash: 3 }
const USAGE = `usage: npm run sim -- <scenario> [--seed n] [--nodes n] [--strategies gridnode,central,random-push] [--json]
                 [--check full|sampled] [--gossip all|<peers>|<peers>+owners]
       npm run sim -- list
       npm run sim -- study [--quick] [--seed n]
       npm run sim -- live [--nodes n] [--tasks n] [--netem delay=20ms,loss=1%]`

function checkNode(): void {
  const major = Number(process.versions.node.split('.')[0])
  if (major < 22) {
    process.stderr.write(
      `gridnode sim needs Node 24 (this is ${process.versions.node}); run it through npm run sim, which uses the repo's Node.\n`,
    )
    process.exit(64)
  }
}

/** Big meshes need a bigger heap than Node's default: re-run this process with one. */
function ensureHeap(nodes: number): boolean {
  const wantMB = nodes > 2000 ? 12_288 : nodes > 300 ? 6144 : 0
  if (wantMB === 0 || getHeapStatistics().heap_size_limit >= wantMB * 0.9 * 1024 * 1024) return false
  const r = spawnSync(
    process.execPath,
    [`--max-old-space-size=${wantMB}`, ...process.execArgv, ...process.argv.slice(1)],
    {
      stdio: 'inherit',
    },
  )
  process.exit(r.status ?? 3)
}

export function progressPrinter(label: string): (p: Progress) => void {
  let last = 0
  const tty = process.stderr.isTTY
  return (p) => {
    const done = p.done === p.total
    if (!done && p.wallMs - last < (tty ? 500 : 10_000)) return
    last = p.wallMs
    const pct = ((100 * p.done) / Math.max(1, p.total)).toFixed(1)
    const rate = Math.round(p.steps / Math.max(1e-3, p.wallMs / 1000))
    const line = `${label} ${p.strategy}: virtual ${(p.now / 1000).toFixed(2)} s, ${p.done}/${p.total} tasks (${pct}%), ${p.steps} events, ${rate} events/s`
    process.stderr.write(tty ? `\r${line}\x1b[K` : `${line}\n`)
  }
}

export interface RunResult {
  record: RunRecord
  perf: Perf
}

export interface ScenarioRunOptions {
  quiet?: boolean
  outDir?: string
  check?: 'full' | 'sampled'
  /** Overrides the scenario's gossip model: all, <n> (neighbourhood) or <n>+owners. */
  gossip?: string
  write?: boolean
  /** Reuse a record already in outDir for the same scheduler sources (the study's long runs). */
  reuse?: boolean
}

export function parseGossip(g: string): GossipSpec {
  if (g === 'all') return { mode: 'all' }
  const m = /^(\d+)(\+owners)?$/.exec(g)
  if (m === null) throw new UsageError(`--gossip is all, <peers> or <peers>+owners, not ${g}`)
  return { mode: 'neighbourhood', peers: Number(m[1]), ownersToAll: m[2] !== undefined }
}

/** Runs one scenario under the given strategies; writes records and plots; returns them. */
export function runScenario(
  name: string,
  seed: number,
  nodes: number | undefined,
  strategies: readonly StrategyName[],
  opts: ScenarioRunOptions = {},
): RunResult[] {
  const base0 = SCENARIOS[name]
  if (base0 === undefined) throw new UsageError(`no scenario ${name} (npm run sim -- list)`)
  const gossip = opts.gossip === undefined ? undefined : parseGossip(opts.gossip)
  const scenario: Scenario =
    gossip === undefined
      ? base0
      : {
          ...base0,
          build: (p) => {
            const s = base0.build(p)
            return { ...s, network: { ...s.network, gossip } }
          },
        }
  const results: RunResult[] = []
  const outDir = opts.outDir ?? OUT_DIR
  const base = `${name}-n${nodes ?? scenario.defaultNodes}-s${seed}${opts.gossip === undefined ? '' : `-g${opts.gossip}`}`
  for (const strategy of strategies) {
    const file = join(outDir, `${base}-${strategy}.json`)
    const old = opts.reuse ? reusable(file) : undefined
    if (old !== undefined) {
      if (!opts.quiet) process.stderr.write(`reusing ${file}\n${summaryLine(old.record, old.perf)}\n`)
      results.push(old)
      continue
    }
    const built = buildModel(scenario, seed, nodes)
    if (opts.check !== undefined) built.spec.check = opts.check
    if (results.length === 0 && !opts.quiet) process.stderr.write(`${describeModel(built)}\n`)
    const { record, perf } = runStrategy(
      built,
      strategy,
      opts.quiet ? undefined : progressPrinter(`[${name}]`),
    )
    if (!opts.quiet) {
      if (process.stderr.isTTY) process.stderr.write('\n')
      process.stderr.write(`${summaryLine(record, perf)}\n`)
      for (const v of record.violations.slice(0, 10)) process.stderr.write(`  violation: ${v}\n`)
    }
    results.push({ record, perf })
    if (opts.write !== false) {
      mkdirSync(outDir, { recursive: true })
      writeFileSync(file, `${JSON.stringify(record, null, 1)}\n`)
      writeFileSync(file.replace(/\.json$/, '.perf.json'), `${JSON.stringify(perf, null, 1)}\n`)
      const g = ganttPlot(record)
      if (g !== undefined) writeFileSync(join(outDir, `${base}-${strategy}-gantt.svg`), g)
    }
  }
  if (opts.write !== false && results.length > 0) {
    const title = `${name}, ${results[0].record.nodes} nodes, seed ${seed}: slot utilization`
    writeFileSync(
      join(outDir, `${base}-utilization.svg`),
      utilizationPlot(
        results.map((r) => r.record),
        title,
      ),
    )
  }
  return results
}

function reusable(file: string): RunResult | undefined {
  if (!existsSync(file) || !existsSync(file.replace(/\.json$/, '.perf.json'))) return undefined
  const record = JSON.parse(readFileSync(file, 'utf8')) as RunRecord
  if ((record.knobs as { schedulerHash?: string }).schedulerHash !== schedulerHash()) return undefined
  return { record, perf: JSON.parse(readFileSync(file.replace(/\.json$/, '.perf.json'), 'utf8')) as Perf }
}

export function summaryLine(r: RunRecord, p: Perf): string {
  const m = r.metrics
  return (
    `${r.strategy}: ${r.outcome}; makespan ${(m.makespanMs / 1000).toFixed(2)} s = ${m.makespanRatio} x lower bound ` +
    `${(m.lowerBoundMs / 1000).toFixed(2)} s; latency mean ${m.meanLatencyMs.toFixed(0)} ms p99 ${m.p99LatencyMs.toFixed(0)} ms; ` +
    `utilization ${m.utilization}; steal msgs/task ${m.stealMessagesPerTask}; sched msgs/task ${m.schedulingMessagesPerTask}; ` +
    `all msgs/task ${m.messagesPerTask}; ${(m.bytesMoved / 1e6).toFixed(1)} MB moved; lost ${m.tasksLost}; ` +
    `run twice ${m.tasksRunTwice}; ${p.steps} events in ${(p.wallMs / 1000).toFixed(1)} s (${Math.round(p.eventsPerSec)}/s)`
  )
}

export class UsageError extends Error {
  override name = 'UsageError'
}

async function main(argv: string[]): Promise<number> {
  checkNode()
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      seed: { type: 'string' },
      nodes: { type: 'string' },
      strategies: { type: 'string' },
      json: { type: 'boolean', default: false },
      check: { type: 'string' },
      quick: { type: 'boolean', default: false },
      tasks: { type: 'string' },
      netem: { type: 'string' },
      gossip: { type: 'string' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  })
  const cmd = positionals[0]
  if (values.help || cmd === undefined) {
    process.stderr.write(`${USAGE}\n`)
    return values.help ? 0 : 64
  }
  if (cmd === 'list') {
    for (const s of Object.values(SCENARIOS))
      process.stdout.write(`${s.name.padEnd(14)} ${s.defaultNodes} nodes  ${s.description}\n`)
    return 0
  }
  const seed = values.seed !== undefined ? int(values.seed, '--seed') : Math.floor(Math.random() * 2 ** 31)
  if (cmd === 'study') {
    ensureHeap(values.quick ? 0 : 10_000)
    const { runStudy } = await import('./study.ts')
    return runStudy({ quick: values.quick, seed: values.seed !== undefined ? seed : 1 })
  }
  if (cmd === 'live') {
    const { runLive } = await import('./live/run.ts')
    return runLive({
      nodes: values.nodes !== undefined ? int(values.nodes, '--nodes') : 4,
      tasks: values.tasks !== undefined ? int(values.tasks, '--tasks') : 200,
      seed,
      netem: values.netem,
      json: values.json,
    })
  }
  const nodes = values.nodes !== undefined ? int(values.nodes, '--nodes') : undefined
  ensureHeap(nodes ?? SCENARIOS[cmd]?.defaultNodes ?? 0)
  const strategies = (values.strategies?.split(',') ?? [
    ...(SCENARIOS[cmd]?.strategies ?? STRATEGIES),
  ]) as StrategyName[]
  for (const s of strategies)
    if (!STRATEGIES.includes(s)) throw new UsageError(`no strategy ${s} (${STRATEGIES.join(', ')})`)
  const check = values.check
  if (check !== undefined && check !== 'full' && check !== 'sampled')
    throw new UsageError('--check is full or sampled')
  process.stderr.write(`seed ${seed}\n`)
  const results = runScenario(cmd, seed, nodes, strategies, { check, gossip: values.gossip })
  if (values.json)
    process.stdout.write(
      `${JSON.stringify(
        results.map((r) => r.record),
        null,
        1,
      )}\n`,
    )
  const code = Math.max(...results.map((r) => EXIT[r.record.outcome]))
  if (code !== 0)
    process.stderr.write(
      `replay: npm run sim -- ${cmd} --seed ${seed}${nodes !== undefined ? ` --nodes ${nodes}` : ''}\n`,
    )
  return code
}

function int(s: string, what: string): number {
  const n = Number(s)
  if (!Number.isInteger(n) || n < 0) throw new UsageError(`${what} takes a whole number, not ${s}`)
  return n
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  main(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code
    },
    (err: Error) => {
      process.stderr.write(`${err instanceof UsageError ? err.message : (err.stack ?? String(err))}\n`)
      process.exitCode = err instanceof UsageError ? 64 : 3
    },
  )
}
