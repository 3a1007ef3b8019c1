import { availableParallelism } from 'node:os'
import { join } from 'node:path'
import type { Command } from 'commander'
import { connect } from '../../src/client/grid.ts'
import { formatDuration, formatRate } from '../../src/client/progress.ts'
import { LocalMesh, packageRoot } from '../demo/local-mesh.ts'
import { type DemoReport, type NodeStats, summarize } from '../demo/summary.ts'
import { positiveNumber } from '../flags.ts'
import { EXIT, ExitError, printJson, shortId, table } from '../output.ts'
import { type ProgressDisplay, progressWanted, showProgress } from '../progress-bar.ts'

interface DemoFlags {
  nodes?: number
  tasks?: number
  samples?: number
  cpus?: number
  json?: boolean
}

const MAX_NODES = 16

export function registerDemo(program: Command): void {
  program
    .command('demo')
    .description('start a local mesh of real daemons, run a Monte Carlo estimate of pi across it, clean up')
    .option('--nodes <n>', `daemons to start on 127.0.0.1 (default 4, at most ${MAX_NODES})`, positiveNumber)
    .option('--tasks <n>', 'tasks in the job (default 200)', positiveNumber)
    .option('--samples <n>', 'random points per task (default 5000000)', positiveNumber)
    .option('--cpus <n>', 'task slots per daemon (default: cores / nodes, at least 1)', positiveNumber)
    .option('--json', 'no progress bar; print one JSON object with the result and per-node figures')
    .action(async (opts: DemoFlags) => {
      const nodes = opts.nodes ?? 4
      if (nodes > MAX_NODES) throw new ExitError(EXIT.usage, `--nodes ${nodes}: at most ${MAX_NODES}`)
      const cpus = opts.cpus ?? Math.max(1, Math.floor(availableParallelism() / nodes))
      const mesh = new LocalMesh({ nodes, cpusPerNode: cpus })
      const ui: DemoUi = {}
      const onSigint = () => {
        ui.display?.stop()
        process.stderr.write('\ngridnode demo: interrupted; stopping the mesh\n')
        mesh.stop().finally(() => process.exit(130))
      }
      process.once('SIGINT', onSigint)
      process.once('exit', () => mesh.killNow())
      try {
        const report = await runDemo(mesh, { ...opts, nodes, cpus }, ui)
        if (opts.json) printJson(report)
        else printReport(report)
      } finally {
        if (!opts.json) say(opts, 'stopping the mesh and removing its data dirs')
        await mesh.stop()
        process.off('SIGINT', onSigint)
      }
    })
}

function say(opts: DemoFlags, line: string): void {
  if (!opts.json) process.stderr.write(`${line}\n`)
}

/** What Ctrl-C must tidy up: the progress bar hides the cursor while it is up. */
interface DemoUi {
  display?: ProgressDisplay
}

async function runDemo(
  mesh: LocalMesh,
  opts: DemoFlags & { nodes: number; cpus: number },
  ui: DemoUi,
): Promise<DemoReport> {
  const tasks = opts.tasks ?? 200
  const samples = opts.samples ?? 5_000_000
  const plural = opts.cpus === 1 ? 'slot' : 'slots'
  say(
    opts,
    `starting ${opts.nodes} gridnode daemons on 127.0.0.1 (${opts.cpus} task ${plural} each, ` +
      `data dirs in ${mesh.root})…`,
  )
  const t0 = performance.now()
  await mesh.start()
  for (const n of mesh.nodes) say(opts, `  ${n.name}  ${n.addr}`)
  await mesh.waitForMembership()
  const meshMs = performance.now() - t0
  const submitter = mesh.nodes[mesh.nodes.length - 1]
  say(opts, `mesh "${mesh.mesh}" ready in ${(meshMs / 1000).toFixed(1)} s: every node sees the others`)
  say(
    opts,
    `${submitter.name} submits ${tasks} tasks of ${samples.toLocaleString('en')} random points each; ` +
      'idle nodes steal work from busy ones…',
  )
  const grid = await connect({ dataDir: submitter.dataDir })
  const module = join(packageRoot(), 'examples', 'monte-carlo-pi', 'pi-task.ts')
  const chunks = Array.from({ length: tasks }, (_, i) => ({ seed: 0x2545f491 + i * 7919, samples }))
  const started = performance.now()
  const job = grid.map<{ seed: number; samples: number }, { inside: number; samples: number }>(
    module,
    'samplePi',
    chunks,
    { name: 'demo: Monte Carlo pi' },
  )
  const id = await job.id
  const display = showProgress(job, progressWanted(opts.json))
  ui.display = display
  let counts: Array<{ inside: number; samples: number }>
  try {
    counts = await job.results()
  } finally {
    display.stop()
  }
  const wallMs = performance.now() - started
  const records = await grid.results(id)
  const stats = await Promise.all(
    mesh.nodes.map(async (n): Promise<NodeStats> => {
      const g = await connect({ dataDir: n.dataDir })
      const s = await g.client.request<{ scheduler: { tasksStolen: number; stealsGranted: number } }>(
        'GET',
        '/v1/status',
      )
      return { name: n.name, peerId: n.peerId, pid: n.proc.pid ?? 0, slots: opts.cpus, ...s.scheduler }
    }),
  )
  return summarize({ job: id, dataRoot: mesh.root, meshMs, wallMs, counts, records, nodes: stats })
}

function printReport(r: DemoReport): void {
  const rows = [['NODE', 'PEER', 'TASKS', 'STOLEN', 'BUSY', 'UTILISATION']]
  for (const n of r.nodes) {
    rows.push([
      n.name,
      shortId(n.peerId),
      String(n.tasks),
      String(n.tasksStolen),
      formatBusy(n.busyMs),
      `${Math.round(n.utilisation * 100)}%`,
    ])
  }
  process.stdout.write(
    `\npi ≈ ${r.pi.toFixed(6)} (off by ${Math.abs(r.error).toExponential(1)}) from ` +
      `${r.samples.toLocaleString('en')} points in ${formatBusy(r.wallMs)} ` +
      `(${formatRate(r.tasksPerSecond)} tasks/s on ${r.nodes.filter((n) => n.tasks > 0).length} nodes)\n\n` +
      `${table(rows)}\n\n` +
      'STOLEN: tasks the node took from busier peers by work stealing. BUSY: time spent running tasks.\n' +
      `Start a real node with \`gridnode start\`; submit with \`gridnode map\` (job ${r.job} is gone with the demo).\n`,
  )
}

function formatBusy(ms: number): string {
  return ms < 10_000 ? `${(ms / 1000).toFixed(2)} s` : formatDuration(ms)
}
