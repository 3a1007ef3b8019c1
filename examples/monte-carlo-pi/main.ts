/**
 * Monte Carlo estimate of pi across the mesh, with the library's map():
 *
 *   npx node examples/monte-carlo-pi/main.ts [--tasks 100] [--samples 1000000] [--data-dir DIR]
 *
 * Each task counts random points inside the quarter circle (pi-task.ts);
 * the sum of the counts gives pi. Progress shows on a terminal.
 */
import { parseArgs } from 'node:util'
import { connect, formatProgress, ProgressMeter } from 'gridnode'
import type { PiChunk, PiCount } from './pi-task.ts'

const { values: args } = parseArgs({
  options: {
    tasks: { type: 'string', default: '100' },
    samples: { type: 'string', default: '1000000' },
    'data-dir': { type: 'string' },
  },
})
const tasks = Number(args.tasks)
const samples = Number(args.samples)

const grid = await connect({ dataDir: args['data-dir'] })
const chunks: PiChunk[] = Array.from({ length: tasks }, (_, i) => ({ seed: 1 + i * 7919, samples }))
const job = grid.map<PiChunk, PiCount>(new URL('./pi-task.ts', import.meta.url), 'samplePi', chunks)

if (process.stderr.isTTY) {
  const meter = new ProgressMeter(performance.now())
  job.on('progress', (p) => process.stderr.write(`\r${formatProgress(meter.update(p, performance.now()))}`))
  job.on('finished', () => process.stderr.write('\n'))
}

const counts = await job.results() // in input order; throws a JobFailedError summary if any task failed
const inside = counts.reduce((n, c) => n + c.inside, 0)
const total = counts.reduce((n, c) => n + c.samples, 0)
const pi = (4 * inside) / total
const nodes = new Set((await grid.results(await job.id)).map((r) => r.ranOn)).size
console.log(
  `pi ≈ ${pi.toFixed(6)} (off by ${Math.abs(pi - Math.PI).toExponential(2)}) from ${total} points on ${nodes} node${nodes === 1 ? '' : 's'}`,
)
