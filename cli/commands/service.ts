/**
 * `gridnode service install [--user] [--dry-run] [start flags…] | status | uninstall`: run the
 * node under systemd, so that it starts at boot and comes back after a crash.
 *
 *   system-wide  /etc/systemd/system/<name>.service (root; runs as the invoking user, or $SUDO_USER)
 *   --user       ~/.config/systemd/user/<name>.service, with `loginctl enable-linger` so it runs
 *                without a login session
 *
 * The unit's ExecStart is this Node (process.execPath) and this package's bin/gridnode.js, both
 * absolute, so it works whatever systemd's PATH holds (nvm, a checkout, npm install -g).
 * Type=simple: systemd counts the node as started once it is spawned. (Readiness by sd_notify
 * needs a unix datagram socket, which Node cannot open without a native module.)
 * Where systemd is not running, install refuses and prints the unit for placing by hand.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, realpathSync, rmSync, writeFileSync } from 'node:fs'
import { homedir, userInfo } from 'node:os'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { Command, CommanderError } from 'commander'
import { EXIT, ExitError } from '../output.ts'
import { registerStart } from './start.ts'

export type Scope = 'system' | 'user'

export interface UnitOptions {
  scope: Scope
  /** Absolute path of the Node that runs gridnode. */
  node: string
  /** Absolute path of gridnode's bin/gridnode.js. */
  bin: string
  /** Flags for `gridnode start`. */
  startFlags: string[]
  /** System units: the account the node runs as. */
  user?: string
  description?: string
}

/**
 * One ExecStart argument, quoted for systemd: `%` (specifiers) and `$` (variables) are doubled;
 * an argument with spaces, quotes, backslashes or `;` goes in double quotes with `\` escapes.
 */
export function systemdQuote(arg: string): string {
  const escaped = arg.replaceAll('%', '%%').replaceAll('$', '$$$$')
  if (escaped !== '' && /^[A-Za-z0-9_@%+=:,./$-]+$/.test(escaped)) return escaped
  return `"${escaped.replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`
}

/** The unit file's text. */
export function unitText(o: UnitOptions): string {
  const exec = [o.node, o.bin, 'start', ...o.startFlags].map(systemdQuote).join(' ')
  const lines = [
    '# Written by `gridnode service install`; remove with `gridnode service uninstall`.',
    '[Unit]',
    `Description=${o.description ?? 'gridnode compute mesh node'}`,
    // The README installed with the package (npm ships it whatever `files` says).
    `Documentation=${pathToFileURL(resolve(dirname(o.bin), '..', 'README.md')).href}`,
    'Wants=network-online.target',
    'After=network-online.target',
    '',
    '[Service]',
    'Type=simple',
    `ExecStart=${exec}`,
  ]
  if (o.scope === 'system' && o.user) lines.push(`User=${o.user}`)
  lines.push(
    // Logs go to stderr as JSON lines (not a terminal): journalctl shows them.
    'Restart=on-failure',
    'RestartSec=5',
    // The node leaves the mesh and exits within 5 s of SIGTERM.
    'KillSignal=SIGTERM',
    'TimeoutStopSec=15',
    '',
    '[Install]',
    `WantedBy=${o.scope === 'system' ? 'multi-user.target' : 'default.target'}`,
    '',
  )
  return lines.join('\n')
}

/** Where the unit goes. */
export function unitPath(scope: Scope, name: string, env: NodeJS.ProcessEnv = process.env): string {
  if (scope === 'system') return join('/etc/systemd/system', `${name}.service`)
  const config = env.XDG_CONFIG_HOME || join(env.HOME || homedir(), '.config')
  return join(config, 'systemd', 'user', `${name}.service`)
}

/** Whether systemd runs this machine (what sd_booted() checks). */
export function systemdRunning(): boolean {
  return existsSync('/run/systemd/system')
}

/** This package's bin/gridnode.js, absolute (symlinks resolved: an npm -g link may move). */
export function binPath(): string {
  let dir = dirname(fileURLToPath(import.meta.url))
  for (let i = 0; i < 6; i++) {
    const bin = join(dir, 'bin', 'gridnode.js')
    if (existsSync(bin)) return realpathSync(bin)
    dir = dirname(dir)
  }
  throw new ExitError(EXIT.failed, 'cannot find bin/gridnode.js around the CLI')
}

/**
 * Checks the start flags with `gridnode start`'s own parser (unknown flags, missing values: exit 2)
 * and makes --data-dir absolute, since a service does not run in this directory.
 */
export async function checkStartFlags(flags: string[], cwd = process.cwd()): Promise<string[]> {
  const probe = new Command('gridnode').exitOverride().configureOutput({
    writeErr: () => {},
    writeOut: () => {},
  })
  registerStart(probe)
  const start = probe.commands.find((c) => c.name() === 'start')!
  let failure: string | undefined
  start.exitOverride().configureOutput({
    writeErr: (s) => {
      failure = s.trim()
    },
    writeOut: () => {},
  })
  start.action(() => {})
  try {
    await probe.parseAsync(['start', ...flags], { from: 'user' })
  } catch (err) {
    if (err instanceof CommanderError) {
      throw new ExitError(EXIT.usage, `start flags for the service: ${failure ?? err.message}`)
    }
    throw err
  }
  if (start.opts().exitWithParent) {
    throw new ExitError(
      EXIT.usage,
      'start flags for the service: --exit-with-parent makes no sense under systemd',
    )
  }
  const out = [...flags]
  for (let i = 0; i < out.length; i++) {
    if (out[i] === '--data-dir' && out[i + 1] !== undefined) out[i + 1] = resolve(cwd, out[i + 1])
    else if (out[i].startsWith('--data-dir=')) out[i] = `--data-dir=${resolve(cwd, out[i].slice(11))}`
  }
  return out
}

type Run = (cmd: string, args: string[]) => number

const runInherit: Run = (cmd, args) => {
  process.stderr.write(`$ ${[cmd, ...args].join(' ')}\n`)
  const r = spawnSync(cmd, args, { stdio: 'inherit' })
  if (r.error) {
    process.stderr.write(`gridnode: cannot run ${cmd}: ${r.error.message}\n`)
    return 127
  }
  return r.status ?? 1
}

function systemctl(scope: Scope): (args: string[]) => string[] {
  return (args) => (scope === 'user' ? ['--user', ...args] : args)
}

function noSystemd(unit: string, path: string, scope: Scope): ExitError {
  process.stdout.write(unit)
  const enable = scope === 'user' ? 'systemctl --user' : 'sudo systemctl'
  return new ExitError(
    EXIT.failed,
    'systemd is not running on this machine (no /run/systemd/system), so no service was installed.\n' +
      `The unit is above: place it at ${path} on a machine with systemd and run \`${enable} daemon-reload && ${enable} enable --now ${basename(path)}\`,\n` +
      'or start `gridnode start` with the same flags from your own supervisor (it logs JSON to stderr and exits on SIGTERM).',
  )
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf('/') + 1)
}

export function registerService(program: Command): void {
  const service = program
    .command('service')
    .description('run the node as a systemd service: install [--user] [start flags…], status, uninstall')

  service
    .command('install')
    .description(
      'write a systemd unit that runs `gridnode start` with the flags given here at boot, restarting it after a crash, and start it',
    )
    .usage('[--user] [--name <name>] [--dry-run] [start flags…]')
    .option(
      '--user',
      'a user unit in ~/.config/systemd/user (with lingering enabled) instead of a system unit',
    )
    .option('--name <name>', 'unit name, for several nodes on one machine', 'gridnode')
    .option('--dry-run', 'print the unit and what would be run, change nothing')
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption('-h, --help')
    .action(async (opts: { user?: boolean; name: string; dryRun?: boolean }, cmd: Command) => {
      const scope: Scope = opts.user ? 'user' : 'system'
      checkName(opts.name)
      const startFlags = await checkStartFlags(cmd.args)
      const account = process.env.SUDO_USER || userInfo().username
      const unit = unitText({ scope, node: process.execPath, bin: binPath(), startFlags, user: account })
      const path = unitPath(scope, opts.name)
      const ctl = systemctl(scope)
      const file = `${opts.name}.service`
      const steps: [string, string[]][] = [
        ['systemctl', ctl(['daemon-reload'])],
        ['systemctl', ctl(['enable', '--now', file])],
      ]
      if (scope === 'user') steps.unshift(['loginctl', ['enable-linger', account]])
      if (opts.dryRun) {
        process.stdout.write(`# ${path}\n${unit}`)
        process.stderr.write(
          `would write ${path}, then run:\n${steps.map(([c, a]) => `  ${c} ${a.join(' ')}\n`).join('')}`,
        )
        return
      }
      if (!systemdRunning()) throw noSystemd(unit, path, scope)
      if (scope === 'system' && process.getuid?.() !== 0) {
        throw new ExitError(
          EXIT.failed,
          `writing ${path} needs root: run \`sudo "$(command -v gridnode)" service install …\`, or \`gridnode service install --user …\` for a user unit`,
        )
      }
      mkdirSync(dirname(path), { recursive: true })
      writeFileSync(path, unit, { mode: 0o644 })
      process.stderr.write(`wrote ${path}\n`)
      for (const [c, a] of steps) {
        const code = runInherit(c, a)
        if (code !== 0) throw new ExitError(EXIT.failed, `\`${c} ${a.join(' ')}\` failed (exit ${code})`)
      }
      process.stderr.write(
        `gridnode runs as ${file}${scope === 'user' ? ' (user unit)' : ''}; see \`gridnode service status${scope === 'user' ? ' --user' : ''}\`, logs with \`journalctl ${scope === 'user' ? '--user ' : ''}-u ${file}\`\n`,
      )
    })

  service
    .command('status')
    .description("systemd's view of the service (systemctl status)")
    .option('--user', 'the user unit')
    .option('--name <name>', 'unit name', 'gridnode')
    .action((opts: { user?: boolean; name: string }) => {
      const { scope, path } = installedUnit(opts)
      if (!existsSync(path)) process.stderr.write(`no unit at ${path} (gridnode service install)\n`)
      const code = runInherit('systemctl', systemctl(scope)(['status', '--no-pager', `${opts.name}.service`]))
      // systemctl status: 0 running, 3 not running, 4 no such unit.
      if (code !== 0) process.exitCode = EXIT.failed
    })

  service
    .command('uninstall')
    .description('stop and disable the service and remove its unit (the data dir stays)')
    .option('--user', 'the user unit')
    .option('--name <name>', 'unit name', 'gridnode')
    .action((opts: { user?: boolean; name: string }) => {
      const { scope, path } = installedUnit(opts)
      if (scope === 'system' && process.getuid?.() !== 0) {
        throw new ExitError(EXIT.failed, `removing ${path} needs root (sudo), or --user for the user unit`)
      }
      const ctl = systemctl(scope)
      runInherit('systemctl', ctl(['disable', '--now', `${opts.name}.service`]))
      const had = existsSync(path)
      rmSync(path, { force: true })
      runInherit('systemctl', ctl(['daemon-reload']))
      process.stderr.write(had ? `removed ${path}\n` : `no unit at ${path}\n`)
      if (scope === 'user') {
        process.stderr.write('lingering stays enabled (loginctl disable-linger to turn it off)\n')
      }
    })
}

/** status / uninstall: the unit's scope and path; systemd must be running. */
function installedUnit(opts: { user?: boolean; name: string }): { scope: Scope; path: string } {
  const scope: Scope = opts.user ? 'user' : 'system'
  checkName(opts.name)
  if (!systemdRunning()) {
    throw new ExitError(EXIT.failed, 'systemd is not running on this machine (no /run/systemd/system)')
  }
  return { scope, path: unitPath(scope, opts.name) }
}

function checkName(name: string): void {
  if (!/^[A-Za-z0-9_.@-]+$/.test(name)) {
    throw new ExitError(EXIT.usage, `--name ${name}: letters, digits and _ . @ - only`)
  }
}
