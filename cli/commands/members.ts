import type { Command } from 'commander'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { type ClientFlags, printJson, table } from '../output.ts'

export interface MembersView {
  mesh: string
  issuer: string
  self: { peer: string; expires: string | null }
  members: Array<{ peer: string; expires: string; lastSeenMs: number | null; connected: boolean }>
  revocations: Array<{ peer: string; at: string }>
}

export function registerMembers(program: Command): void {
  program
    .command('members')
    .description("the mesh's members this node has verified, their certificates, and revocations")
    .option('--data-dir <dir>', 'which local daemon to ask (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print one JSON object')
    .action(async (opts: ClientFlags) => {
      const m = await DaemonClient.open(opts).request<MembersView>('GET', '/v1/members')
      if (opts.json) return printJson(m)
      const rows = [['PEER', 'CERTIFICATE UNTIL', 'LAST SEEN']]
      rows.push([`${m.self.peer} (this node)`, m.self.expires ?? '-', 'now'])
      for (const x of m.members) {
        rows.push([
          x.peer,
          x.expires,
          x.connected ? 'connected' : `${Math.round((x.lastSeenMs ?? 0) / 1000)} s ago`,
        ])
      }
      let out = `mesh ${m.mesh} (issuer ${m.issuer})\n${table(rows)}\n`
      if (m.revocations.length > 0) {
        out += `\nrevoked\n${table([['PEER', 'AT'], ...m.revocations.map((r) => [r.peer, r.at])])}\n`
      }
      process.stdout.write(out)
    })
}
