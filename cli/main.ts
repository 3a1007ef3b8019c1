/**
 * The `gridnode` command. Each subcommand lives in cli/commands/; this file
 * wires them into one commander program and maps failures to exit codes:
 * 0 ok, 1 some tasks failed or the command failed, 2 usage error, 3 no daemon.
 */
import { Command, CommanderError } from 'commander'
import { GridnodeError } from '../src/errors.ts'
import { VERSION } from '../src/version.ts'
import { registerCancel } from './commands/cancel.ts'
import { registerDashboard } from './commands/dashboard.ts'
import { registerDemo } from './commands/demo.ts'
import { registerInvite } from './commands/invite.ts'
import { registerJob } from './commands/job.ts'
import { registerJobs } from './commands/jobs.ts'
import { registerMap } from './commands/map.ts'
import { registerMembers } from './commands/members.ts'
import { registerPeers } from './commands/peers.ts'
import { registerPolicy } from './commands/policy.ts'
import { registerResults } from './commands/results.ts'
import { registerRevoke } from './commands/revoke.ts'
import { registerRun } from './commands/run.ts'
import { registerService } from './commands/service.ts'
import { listenFailure, registerStart } from './commands/start.ts'
import { registerStatus } from './commands/status.ts'
import { registerWhy } from './commands/why.ts'
import { EXIT, ExitError } from './output.ts'

export function buildProgram(): Command {
  const program = new Command('gridnode')
    .description('A peer-to-peer compute mesh: start it on every machine, submit jobs from any of them.')
    .version(VERSION)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    // Lets `gridnode run` hand everything after its command to that command (see run.ts).
    .enablePositionalOptions()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  registerStart(program)
  registerStatus(program)
  registerPeers(program)
  registerInvite(program)
  registerMembers(program)
  registerRevoke(program)
  registerPolicy(program)
  registerMap(program)
  registerRun(program)
  registerJobs(program)
  registerJob(program)
  registerResults(program)
  registerCancel(program)
  registerWhy(program)
  registerDashboard(program)
  registerDemo(program)
  registerService(program)
  for (const cmd of program.commands) cmd.exitOverride().showHelpAfterError('(run with --help for usage)')
  return program
}

/** Errors that mean the command line named something unusable: exit 2. */
const USAGE_CODES = new Set([
  'GN_BAD_CONFIG',
  'GN_BAD_FLAG',
  'GN_BAD_INPUT',
  'GN_BAD_SUBMIT',
  'GN_MODULE_NOT_FOUND',
  'GN_BUNDLE_BUILD',
  'GN_NO_SUCH_JOB',
  'GN_BAD_TOKEN',
  'GN_BAD_POLICY',
])

async function main(argv: string[]): Promise<number> {
  try {
    await buildProgram().parseAsync(argv)
    return process.exitCode === undefined ? EXIT.ok : Number(process.exitCode)
  } catch (err) {
    if (err instanceof CommanderError) {
      // help and version exit 0; every parse problem is a usage error.
      return err.exitCode === 0 ? EXIT.ok : EXIT.usage
    }
    if (err instanceof ExitError) {
      if (err.message) process.stderr.write(`gridnode: ${err.message}\n`)
      return err.code
    }
    if (err instanceof GridnodeError) {
      process.stderr.write(`gridnode: ${err.message}\n`)
      if (err.code === 'GN_NO_DAEMON') return EXIT.noDaemon
      if (USAGE_CODES.has(err.code)) return EXIT.usage
      return EXIT.failed
    }
    // An address in use or not on this machine is the command line's to fix: one line, no stack.
    const listen = listenFailure(err)
    if (listen !== undefined) {
      process.stderr.write(`gridnode: ${listen}\n`)
      return EXIT.usage
    }
    process.stderr.write(`gridnode: ${(err as Error).stack ?? String(err)}\n`)
    return EXIT.failed
  }
}

// `gridnode map ... | head`: a reader that leaves early is not an error.
process.stdout.on('error', (err: NodeJS.ErrnoException) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? EXIT.ok)
  throw err
})

process.exitCode = await main(process.argv)
