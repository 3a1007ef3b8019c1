import type { Command } from 'commander'
import { connect } from '../../src/client/grid.ts'
import { describeJob } from '../job-view.ts'
import { type ClientFlags, printJson } from '../output.ts'

export function registerJob(program: Command): void {
  program
    .command('job')
    .description("one job: status, task counts, what it runs (from the owner's store)")
    .argument('<id>', 'the job id (gridnode jobs lists them)')
    .option('--data-dir <dir>', 'which local daemon to ask (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print one JSON object')
    .action(async (id: string, opts: ClientFlags) => {
      const grid = await connect({ dataDir: opts.dataDir })
      const job = await grid.job(id)
      if (opts.json) return printJson(job)
      process.stdout.write(`${describeJob(job)}\n`)
    })
}
