import type { Command } from 'commander'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { connect } from '../../src/client/grid.ts'
import { durationMs, positiveNumber } from '../flags.ts'
import { ago, taskCounts } from '../job-view.ts'
import { type ClientFlags, printJson, table } from '../output.ts'

export function registerJobs(program: Command): void {
  const jobs = program
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
  jobs
    .command('prune')
    .description('delete finished jobs (and their results) older than the retention period from the store')
    .option(
      '--older-than <duration>',
      'finished before this long ago, e.g. 7d (default: policy jobRetention, 30d)',
      durationMs,
    )
    .option('--data-dir <dir>', 'which local daemon to ask (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print one JSON object')
    .action(async (opts: ClientFlags & { olderThan?: number }) => {
      const body = opts.olderThan === undefined ? {} : { olderThanMs: opts.olderThan }
      const r = await DaemonClient.open(opts).request<{ olderThanMs: number; pruned: number; ids: string[] }>(
        'POST',
        '/v1/jobs/prune',
        body,
      )
      if (opts.json) return printJson(r)
      const days = Math.round((r.olderThanMs / 86_400_000) * 10) / 10
      process.stdout.write(
        `pruned ${r.pruned} finished job${r.pruned === 1 ? '' : 's'} older than ${days} days\n`,
      )
    })
}
