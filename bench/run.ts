/**
 * `npm run bench [-- <name>...] [--json]`: prints figures, never pass/fail.
 * Targets live in the issues and the README; compare by ratio (PEERS.md).
 */
import { availableParallelism, cpus } from 'node:os'
import { connectBench } from './connect.ts'
import { dashboardSuite } from './dashboard.ts'
import { filesBench } from './files.ts'
import { fuzzBench } from './fuzz.ts'
import { cpuBound, skewed, throughput } from './jobs.ts'
import { membershipBench } from './membership.ts'
import { packageBench } from './package.ts'
import { peersBench } from './peers.ts'
import { roundTripBreakdown } from './roundtrip.ts'
import { sandboxBench } from './sandbox.ts'
import { stagingBench } from './staging.ts'
import { workdirBench } from './workdir.ts'

type Bench = () => Promise<Record<string, number | string>>

const benches: Record<string, Bench> = {
  membership: () => membershipBench(10),
  connect: () => connectBench(40),
  throughput: async () => {
    const two = await throughput(2, 20_000)
    const four = await throughput(4, 20_000)
    return {
      noopTasksPerSec_2daemons: two.steady,
      noopTasksPerSec_2daemons_afterOneRun: two.afterOne,
      noopTasksPerSec_4daemons: four.steady,
      noopTasksPerSec_4daemons_afterOneRun: four.afterOne,
    }
  },
  roundtrip: () => roundTripBreakdown(3000),
  skewed: () => skewed(),
  cpubound: async () => {
    const out: Record<string, number> = {}
    for (const [daemons, slots] of [
      [1, 2],
      [2, 1],
    ]) {
      for (const [k, v] of Object.entries(await cpuBound(daemons, slots))) out[`${k}_${daemons}x${slots}`] = v
    }
    return out
  },
  peers: () => peersBench(),
  fuzz: () => fuzzBench(),
  package: () => packageBench(),
  sandbox: () => sandboxBench(),
  dashboard: () => dashboardSuite(),
  files: () => filesBench(),
  workdir: () => workdirBench(),
  staging: () => stagingBench(),
}

const args = process.argv.slice(2)
const json = args.includes('--json')
const chosen = args.filter((a) => !a.startsWith('--'))
for (const name of chosen) {
  if (!benches[name]) {
    process.stderr.write(`unknown benchmark "${name}"; choose from: ${Object.keys(benches).join(', ')}\n`)
    process.exit(2)
  }
}
const machine = { cores: availableParallelism(), cpu: cpus()[0]?.model ?? 'unknown', node: process.version }
if (!json)
  process.stdout.write(
    `machine: ${machine.cores} cores, ${machine.cpu}, Node ${machine.node}; daemons' sandbox: ${process.env.GRIDNODE_BENCH_SANDBOX ?? 'auto'}\n`,
  )
const results: Record<string, unknown> = { machine }
for (const name of chosen.length > 0 ? chosen : Object.keys(benches)) {
  if (!json) process.stdout.write(`\n== ${name}\n`)
  const figures = await benches[name]()
  results[name] = figures
  if (!json) for (const [k, v] of Object.entries(figures)) process.stdout.write(`  ${k.padEnd(34)} ${v}\n`)
}
if (json) process.stdout.write(`${JSON.stringify(results)}\n`)
