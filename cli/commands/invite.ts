import type { Command } from 'commander'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { durationMs, positiveNumber } from '../flags.ts'
import { type ClientFlags, printJson } from '../output.ts'

interface Invite {
  token: string
  expires: string
  uses: number
}

export function registerInvite(program: Command): void {
  program
    .command('invite')
    .description('print a join token that lets another machine join this mesh (gridnode start --join)')
    .option('--data-dir <dir>', 'which local daemon to ask (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--expires <duration>', 'how long the token stays valid: 30m, 24h, 7d (default 24h)', durationMs)
    .option('--uses <n>', 'how many machines may join with it (default 1)', positiveNumber)
    .option('--json', 'print {"token", "expires", "uses"}')
    .action(async (opts: ClientFlags & { expires?: number; uses?: number }) => {
      const inv = await DaemonClient.open(opts).request<Invite>('POST', '/v1/invites', {
        expiresMs: opts.expires,
        uses: opts.uses,
      })
      if (opts.json) return printJson(inv)
      const who = inv.uses === 1 ? 'one machine' : `${inv.uses} machines`
      process.stdout.write(
        `${inv.token}\n\n` +
          `Lets ${who} join until ${inv.expires}. On the new machine run:\n` +
          `  gridnode start --join ${inv.token.slice(0, 12)}…   (the whole token above)\n`,
      )
    })
}
