import type { Command } from 'commander'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { type ClientFlags, printJson } from '../output.ts'

export function registerRevoke(program: Command): void {
  program
    .command('revoke <peerId>')
    .description('remove a member from the mesh: every member disconnects and refuses it (issuer only)')
    .option('--data-dir <dir>', 'which local daemon to ask (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print one JSON object')
    .action(async (peer: string, opts: ClientFlags) => {
      const r = await DaemonClient.open(opts).request<{ peer: string; at: string }>(
        'POST',
        '/v1/members/revoke',
        { peer },
      )
      if (opts.json) return printJson(r)
      process.stdout.write(`revoked ${r.peer} at ${r.at}; members disconnect it within seconds\n`)
    })
}
