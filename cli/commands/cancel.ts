import type { Command } from 'commander'
import { connect } from '../../src/client/grid.ts'
import { type ClientFlags, printJson } from '../output.ts'

export function registerCancel(program: Command): void {
  program
    .command('cancel')
    .description('stop a job on every node: queued tasks are dropped, running ones killed')
    .argument('<id>', 'the job id (gridnode jobs lists them)')
    .option('--data-dir <dir>', 'which local daemon owns the job (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print one JSON object: {"id", "status"}')
    .action(async (id: string, opts: ClientFlags) => {
      const grid = await connect({ dataDir: opts.dataDir })
      const answer = await grid.cancel(id)
      if (opts.json) return printJson(answer)
      const job = await grid.job(id)
      const finished = job.done + job.failed
      if (answer.status === 'cancelled') {
        process.stdout.write(`cancelled job ${id} (${finished} of ${job.total} tasks had finished)\n`)
      } else {
        process.stdout.write(`job ${id} had already ended (${job.status}); nothing to cancel\n`)
      }
    })
}
