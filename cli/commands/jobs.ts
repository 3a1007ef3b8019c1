import type { Command } from 'commander'
import { connect } from '../../src/client/grid.ts'
import { positiveNumber } from '../flags.ts'
import { ago, taskCounts } from '../job-view.ts'
import { type ClientFlags, printJson, table } from '../output.ts'

export function registerJobs(program: Command): void {
  program
    .command('jobs')
    .description('the jobs submitted to this node, newest first (from its store: kept across restarts)')
    .option('--limit <n>', 'at most this many (default 20)', positiveNumber)
    .option('--data-dir <dir>', 'which local daemon to ask (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print one JSON array')
    .action(async (opts: ClientFlags & { limit?: number }) => {
      const grid = await connect({ dataDir: opts.dataDir })
      const jobs = await grid.jobs(opts.limit ?? 20)
      if (opts.json) return printJson(jobs)
      if (jobs.length === 0) {
        process.stdout.write('no jobs yet (submit one with gridnode map or gridnode run)\n')
        return
      }
      const now = Date.now()
      const rows = [['ID', 'STATUS', 'TASKS', 'SUBMITTED', 'NAME']]
      for (const j of jobs) rows.push([j.id, j.status, taskCounts(j), ago(now - j.createdAt), j.name])
      process.stdout.write(`${table(rows)}\n`)
    })
}
