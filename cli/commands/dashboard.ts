/**
 * `gridnode dashboard [--open] [--json]`: prints the address of this node's
 * dashboard with a one-time login code (valid once, for 60 s). The API token
 * stays in the data dir: the browser trades the code for a session cookie.
 */
import { spawn } from 'node:child_process'
import type { Command } from 'commander'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { type ClientFlags, printJson } from '../output.ts'

interface LoginCode {
  url: string
  expiresInMs: number
}

export function registerDashboard(program: Command): void {
  program
    .command('dashboard')
    .description("the node's live dashboard: prints a one-time login address (--open opens a browser)")
    .option('--data-dir <dir>', 'which local daemon (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--open', 'open it in the default browser')
    .option('--json', 'print one JSON object: {"url", "expiresInMs"}')
    .action(async (opts: ClientFlags & { open?: boolean }) => {
      const login = await DaemonClient.open(opts).request<LoginCode>('POST', '/v1/dashboard/login-codes')
      if (opts.json) printJson(login)
      else
        process.stdout.write(
          `${login.url}\n  (a one-time login: valid once, for ${Math.round(login.expiresInMs / 1000)} s; run gridnode dashboard again for another)\n`,
        )
      if (opts.open) openBrowser(login.url)
    })
}

function openBrowser(url: string): void {
  const [cmd, args] =
    process.platform === 'darwin'
      ? ['open', [url]]
      : process.platform === 'win32'
        ? ['cmd', ['/c', 'start', '', url]]
        : ['xdg-open', [url]]
  try {
    const child = spawn(cmd, args as string[], { stdio: 'ignore', detached: true })
    child.on('error', (err) =>
      process.stderr.write(`gridnode: could not open a browser (${err.message}); open the address above\n`),
    )
    child.unref()
  } catch (err) {
    process.stderr.write(
      `gridnode: could not open a browser (${(err as Error).message}); open the address above\n`,
    )
  }
}
