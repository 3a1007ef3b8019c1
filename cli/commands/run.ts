import type { Command } from 'commander'
import { connect } from '../../src/client/grid.ts'
import { parsePlainLines } from '../../src/client/inputs.ts'
import { type FileFlags, fileOptions, watchOutputs, withFileFlags } from '../files.ts'
import { byteSize, type TaskFlags, taskOptions, withTaskFlags } from '../flags.ts'
import { checkOutFile, checkOutputDir, followJob } from '../follow.ts'
import { type ClientFlags, EXIT, ExitError } from '../output.ts'
import { readInputText } from '../read-inputs.ts'

interface RunFlags extends ClientFlags, TaskFlags, FileFlags {
  inputs?: string
  out?: string
  maxOutput?: number
}

export function registerRun(program: Command): void {
  const cmd = program
    .command('run')
    .description('fan a command out over inputs across the mesh, GNU parallel style')
    .usage('[options] -- <command> [args...]')
    .passThroughOptions()
    .argument('<command...>', 'the command and its arguments; {} in an argument is replaced by the input')
    .option('--inputs <file|->', 'one input per line (default: stdin)')
    .option('--out <file>', 'write the output to this file instead of stdout')
    .option(
      '--max-output <size>',
      "keep this much of each task's stdout: bytes, or 64K, 2M (default 1M, at most 3M)",
      byteSize,
    )
    .option('--data-dir <dir>', 'which local daemon to submit to (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'one JSON line per task as it completes: {"index", "exitCode", "stdout", "stderr"}')
    .addHelpText(
      'after',
      '\nEach input line runs the command once, with {} in its arguments replaced by the line; with no {}\n' +
        'the line is added as the last argument. The command runs without a shell, in a scratch directory\n' +
        'on whichever node takes it: wrap it in sh -c "..." for pipes, and use paths every node can see.\n' +
        'Example: seq 1 100 | gridnode run -- factor {}',
    )
  withFileFlags(withTaskFlags(cmd)).action(async (argv: string[], opts: RunFlags) => {
    if (opts.inputs === undefined && process.stdin.isTTY)
      throw new ExitError(EXIT.usage, 'no inputs: pass --inputs <file>, or pipe one input per line on stdin')
    // No inputs is an empty job: it succeeds at once with no output.
    const inputs = parsePlainLines(await readInputText(opts.inputs ?? '-'))
    const args = argv.some((a) => a.includes('{}')) ? argv : [...argv, '{}']
    const files = await fileOptions(opts)
    // Before the job is submitted: an output path that cannot be written is a usage error now.
    await checkOutFile(opts.out)
    await checkOutputDir(files.outputDir)
    const grid = await connect({ dataDir: opts.dataDir })
    const maxOutput = opts.maxOutput ?? 1 << 20
    const job = grid.run(args, inputs.values, { ...taskOptions(opts), ...files, outputMaxBytes: maxOutput })
    const outputs = watchOutputs(job, files, inputs.values)
    process.exitCode = await followJob(job, {
      json: opts.json,
      mode: 'command',
      maxOutput,
      outFile: opts.out,
      lines: inputs.lines,
      cancelOnInterrupt: true,
      waitForFitMs: opts.waitForFit,
      outputGlobs: files.outputs,
    })
    if (!outputs.ok() && process.exitCode === EXIT.ok) process.exitCode = EXIT.failed
  })
}
