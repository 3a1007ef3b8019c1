import { resolve } from 'node:path'
import type { Command } from 'commander'
import { connect } from '../../src/client/grid.ts'
import { parseJsonLines } from '../../src/client/inputs.ts'
import { type FileFlags, fileOptions, watchOutputs, withFileFlags } from '../files.ts'
import { type TaskFlags, taskOptions, withTaskFlags } from '../flags.ts'
import { checkOutFile, checkOutputDir, followJob } from '../follow.ts'
import { type ClientFlags, EXIT } from '../output.ts'
import { readInputText } from '../read-inputs.ts'

interface MapFlags extends ClientFlags, TaskFlags, FileFlags {
  inputs?: string
  out?: string
}

export function registerMap(program: Command): void {
  const cmd = program
    .command('map')
    .description("run a module's export once per input line, across the mesh")
    .argument('<module>', 'the task module (.ts or .js); its imports are bundled with it')
    .argument('[export]', 'the exported function to call with each input', 'default')
    // Required, but checked in the action: commander checks required options before unknown ones,
    // and `--input -` would be "--inputs not specified" instead of "unknown option (Did you mean --inputs?)".
    .option(
      '--inputs <file|->',
      'JSON Lines: one JSON value per line, each one task; - reads stdin (required)',
    )
    .option('--out <file>', 'write the results to this file instead of stdout')
    .option('--data-dir <dir>', 'which local daemon to submit to (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'one JSON line per result as it completes: {"index", "value"} or {"index", "error"}')
  withFileFlags(withTaskFlags(cmd)).action(async (module: string, exportName: string, opts: MapFlags) => {
    const from =
      opts.inputs ??
      cmd.error("error: required option '--inputs <file|->' not specified", {
        code: 'commander.missingMandatoryOptionValue',
      })
    const source = from === '-' ? 'stdin' : from
    // No inputs is an empty job: it succeeds at once with no results.
    const inputs = parseJsonLines(await readInputText(from), source)
    const files = await fileOptions(opts)
    // Before the job is submitted: an output path that cannot be written is a usage error now.
    await checkOutFile(opts.out)
    await checkOutputDir(files.outputDir)
    const grid = await connect({ dataDir: opts.dataDir })
    const job = grid.map(resolve(module), exportName, inputs.values, { ...taskOptions(opts), ...files })
    const outputs = watchOutputs(
      job,
      files,
      inputs.values.map((v) => (typeof v === 'string' ? v : JSON.stringify(v))),
    )
    process.exitCode = await followJob(job, {
      json: opts.json,
      mode: 'values',
      outFile: opts.out,
      lines: inputs.lines,
      cancelOnInterrupt: true,
      waitForFitMs: opts.waitForFit,
      outputGlobs: files.outputs,
    })
    if (!outputs.ok() && process.exitCode === EXIT.ok) process.exitCode = EXIT.failed
  })
}
