import { finished } from 'node:stream/promises'
import type { Command } from 'commander'
import { connect, type Grid } from '../../src/client/grid.ts'
import { followJob, openOut } from '../follow.ts'
import { ResultPrinter } from '../job-output.ts'
import { type ClientFlags, EXIT, printJson } from '../output.ts'

interface ResultsFlags extends ClientFlags {
  wait?: boolean
  out?: string
  outputDir?: string
}

export function registerResults(program: Command): void {
  program
    .command('results')
    .description("a job's results, from the owner's store (also after a daemon restart)")
    .argument('<id>', 'the job id (gridnode jobs lists them)')
    .option('--wait', 'if the job still runs, follow it and print the rest as they come')
    .option('--out <file>', 'write the results to this file instead of stdout')
    .option(
      '--output-dir <dir>',
      "fetch the job's output files again from the owner's store into <dir> ({} is the input line)",
    )
    .option('--data-dir <dir>', 'which local daemon owns the job (default $GRIDNODE_HOME or ~/.gridnode)')
    .option(
      '--json',
      'one JSON line per result, as `gridnode map --json` or `gridnode run --json` prints them',
    )
    .action(async (id: string, opts: ResultsFlags) => {
      const grid = await connect({ dataDir: opts.dataDir })
      if (opts.outputDir !== undefined) {
        process.exitCode = await downloadOutputs(grid, id, opts.outputDir, Boolean(opts.json))
        return
      }
      const summary = await grid.job(id)
      const mode = summary.kind === 'command' ? 'command' : 'values'
      if (summary.status !== 'running' || opts.wait) {
        // The event stream replays stored results, then follows the job to its end.
        process.exitCode = await followJob(grid.attach(id), {
          json: opts.json,
          mode,
          outFile: opts.out,
          cancelOnInterrupt: false,
          progress: summary.status === 'running',
        })
        return
      }
      const out = await openOut(opts.out)
      const printer = new ResultPrinter({
        json: Boolean(opts.json),
        mode,
        out,
        log: (line) => process.stderr.write(`${line}\n`),
      })
      for (const r of await grid.results(id)) printer.add(r)
      printer.end()
      if (out !== process.stdout) {
        out.end()
        await finished(out)
      }
      process.stderr.write(
        `gridnode: job ${id} is still running: ${summary.done + summary.failed} of ${summary.total} tasks ` +
          `have finished; pass --wait to follow it to the end\n`,
      )
      process.exitCode = EXIT.failed
    })
}

/** `--output-dir`: every output of the job, from the owner's store, under `dir`. */
async function downloadOutputs(grid: Grid, id: string, dir: string, json: boolean): Promise<number> {
  const lines = await grid.client.request<string[]>('GET', `/v1/jobs/${encodeURIComponent(id)}/input-lines`)
  const job = grid.attach(id)
  const writer = await job.download(dir, lines)
  job.detach()
  for (const e of writer.errors) process.stderr.write(`gridnode: task ${e.index}: ${e.message}\n`)
  if (json) printJson({ files: writer.files, bytes: writer.bytes, errors: writer.errors })
  else
    process.stderr.write(
      `gridnode: wrote ${writer.files} output files (${writer.bytes} bytes) under ${dir}\n`,
    )
  return writer.errors.length === 0 ? EXIT.ok : EXIT.failed
}
