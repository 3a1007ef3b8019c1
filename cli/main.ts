/**
 * The `gridnode` command. Each subcommand lives in cli/commands/; this file
 * wires them into one commander program and maps failures to exit codes:
 * 0 ok, 1 some tasks failed or the command failed, 2 usage error, 3 no daemon.
 */
import { Command, CommanderError } from 'commander'
import { GridnodeError } from '../src/errors.ts'
import { registerPeers } from './commands/peers.ts'
import { registerStart } from './commands/start.ts'
import { registerStatus } from './commands/status.ts'
import { EXIT, ExitError } from './output.ts'

export function buildProgram(): Command {
  const program = new Command('gridnode')
    .description('A peer-to-peer compute mesh: start it on every machine, submit jobs from any of them.')
    .version('0.1.0')
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeErr: (s) => process.stderr.write(s) })
  registerStart(program)
  registerStatus(program)
  registerPeers(program)
  for (const cmd of program.commands) cmd.exitOverride().showHelpAfterError('(run with --help for usage)')
  return program
}

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
      if (err.code === 'GN_BAD_CONFIG' || err.code === 'GN_BAD_FLAG') return EXIT.usage
      return EXIT.failed
    }
    process.stderr.write(`gridnode: ${(err as Error).stack ?? String(err)}\n`)
    return EXIT.failed
  }
}

process.exitCode = await main(process.argv)
