import type { Command } from 'commander'
import { loadConfig, readConfigFile, resolveDataDir } from '../../src/node/config/load.ts'
import { type NodeConfig, parseHostPort } from '../../src/node/config/schema.ts'
import { plural } from '../job-view.ts'
import { EXIT, ExitError, printJson } from '../output.ts'

const collect = (value: string, previous: string[] = []): string[] => [...previous, value]

function parseCpus(value: string): number {
  const n = Number(value)
  // Range checks happen in validateConfig so the config file gets the same message.
  return /^\d+$/.test(value) ? n : Number.NaN
}

export function registerStart(program: Command): void {
  program
    .command('start')
    .description('run a node until SIGINT/SIGTERM')
    .option(
      '--data-dir <dir>',
      'data dir (identity, config, job store; default $GRIDNODE_HOME or ~/.gridnode)',
    )
    .option('--listen <multiaddr>', 'listen address, repeatable (default /ip4/0.0.0.0/tcp/0)', collect)
    .option('--bootstrap <multiaddr>', 'a peer to join through, repeatable (…/p2p/<peerId>)', collect)
    .option('--join <token>', 'join the mesh of a token from `gridnode invite` (first start of a data dir)')
    .option('--mesh <name>', 'name of the new private mesh a first start creates (default: generated)')
    .option('--api <host:port>', 'local control API address (default 127.0.0.1:0, any free port)')
    .option('--cpus <n>', 'task slots (default: the core count)', parseCpus)
    .option('--gpus <list|none>', 'GPUs to offer: auto, none, or indexes like 0,1 (default auto: nvidia-smi)')
    .option('--no-mdns', 'do not discover peers on the LAN with mDNS')
    .option(
      '--sandbox <auto|bwrap|none>',
      'tasks of other nodes: auto (bubblewrap if it works, else refuse them), bwrap (required), none (unsandboxed)',
    )
    .option(
      '--metrics <host:port>',
      'also serve Prometheus /metrics here, without the API token (a bare port means 127.0.0.1)',
    )
    .option('--log-level <level>', 'trace, debug, info, warn, error or silent (default info)')
    .option('--log-format <format>', 'json or pretty (default: pretty on a terminal, else json)')
    .option(
      '--when <always|idle>',
      "lend this machine always, or only while its user is idle (policy.json 'when')",
    )
    .option('--max-cpu-share <fraction>', 'share of the slots tasks from other nodes may use, e.g. 0.5')
    .option('--hours <windows>', 'lend slots only in these local hours, e.g. 19-07 or 12:00-13:30,19-07')
    .option('--json', 'print one JSON line when ready instead of a summary')
    .addOption(
      program
        .createOption('--exit-with-parent', 'exit when the parent process goes (tests, demo)')
        .hideHelp(),
    )
    .action(async (opts, cmd: Command) => {
      const fromCli = (k: string) => cmd.getOptionValueSource(k) === 'cli'
      const flags: Partial<NodeConfig> = {
        dataDir: opts.dataDir,
        listen: opts.listen,
        bootstrap: opts.bootstrap,
        mesh: opts.mesh,
        api: opts.api,
        cpus: opts.cpus,
        gpus: opts.gpus,
        mdns: fromCli('mdns') ? opts.mdns : undefined,
        logLevel: opts.logLevel,
        logFormat: opts.logFormat,
        sandbox: opts.sandbox,
        metrics: opts.metrics,
      }
      const config = loadConfig(flags)
      // Under a supervisor (systemd, a pipe, a log collector) logs are JSON lines unless asked otherwise.
      if (!process.stderr.isTTY && !opts.logFormat && !readConfigFile(config.dataDir).logFormat) {
        config.logFormat = 'json'
      }
      // Loaded here, not at the top: client commands need none of libp2p and start faster without it.
      const { startDaemon } = await import('../../src/node/daemon.ts')
      const policy = { when: opts.when, maxCpuShare: opts.maxCpuShare, hours: opts.hours }
      // A person at a terminal reads the banner below; the same facts need no log lines there too.
      const banner = !opts.json && config.logFormat === 'pretty'
      const daemon = await startDaemon(config, undefined, { join: opts.join, policy, banner }).catch(
        (err: unknown) => {
          // An address in use (or not on this machine): one line naming the flag, exit 2.
          const line = listenFailure(err, config)
          throw line === undefined ? err : new ExitError(EXIT.usage, line)
        },
      )
      const ready = {
        peerId: daemon.node.peerId.toString(),
        addrs: daemon.node.getMultiaddrs().map(String),
        mesh: daemon.config.mesh,
        meshEvent: daemon.meshEvent,
        issuer: daemon.membership.isIssuer,
        api: daemon.apiUrl,
        dataDir: config.dataDir,
        slots: daemon.capacity.slots,
        gpus: daemon.capacity.gpus.length,
        sandbox: daemon.sandbox,
        metrics: daemon.metricsUrl ?? null,
      }
      // Stop signals are handled from before anything says the daemon is up: one sent on seeing the
      // banner found no handler half the time (Node's default then killed it, its last logs unwritten).
      const shutdown = waitForShutdown(daemon, Boolean(opts.exitWithParent))
      if (opts.json) printJson(ready)
      else {
        process.stdout.write(
          `${startBanner(ready)}\n` +
            ready.addrs.map((a) => `  listening on ${a}\n`).join('') +
            `  control API ${ready.api} (data dir ${ready.dataDir})\n` +
            `  sandbox: ${ready.sandbox.mode}, ${sandboxLine(ready.sandbox)}\n` +
            (ready.metrics ? `  Prometheus metrics ${ready.metrics} (no token)\n` : '') +
            '  stop with Ctrl-C\n' +
            meshNote(daemon.meshEvent, daemon.membership.isIssuer, ready.dataDir),
        )
      }
      await shutdown
    })
}

/** The first line of `gridnode start`: "… is up (mesh "lab", 1 slot, 0 GPUs)". */
export function startBanner(r: { peerId: string; mesh: string; slots: number; gpus: number }): string {
  return `gridnode node ${r.peerId} is up (mesh "${r.mesh}", ${plural(r.slots, 'slot')}, ${plural(r.gpus, 'GPU')})`
}

/** Why a listen failed, in words, from an errno code (also found inside libp2p's message). */
const LISTEN_REASONS: Record<string, string> = {
  EADDRINUSE: 'address already in use',
  EADDRNOTAVAIL: 'address not available on this machine',
  EACCES: 'permission denied (ports below 1024 need privileges)',
}

/**
 * A failure to listen as one line naming the flag and the address, e.g.
 * `--api 127.0.0.1:4001: address already in use`: Node's errors of the API and metrics servers
 * (syscall 'listen') and libp2p's UnsupportedListenAddressesError for --listen. Without `config`
 * (or when no flag's port matches) the address alone is named. Anything else: undefined.
 */
export function listenFailure(
  err: unknown,
  config?: Pick<NodeConfig, 'api' | 'metrics'>,
): string | undefined {
  if (typeof err !== 'object' || err === null) return undefined
  const e = err as NodeJS.ErrnoException & { address?: string; port?: number }
  if (e.syscall === 'listen' && typeof e.code === 'string') {
    const reason = LISTEN_REASONS[e.code] ?? e.code
    // The API listens first; the metrics server is the one that can meet the API's port.
    const flag = (
      [
        ['--metrics', config?.metrics],
        ['--api', config?.api],
      ] as const
    ).find(([, at]) => at !== undefined && at !== '' && portOf(at) === e.port && e.port !== 0)
    const where = flag ? `${flag[0]} ${flag[1]}` : `${e.address ?? ''}:${e.port ?? ''}`
    return `${flag ? '' : 'cannot listen on '}${where}: ${reason}`
  }
  if (e.name === 'UnsupportedListenAddressesError' && typeof e.message === 'string') {
    // libp2p's message lists each failed address: "\n  /ip4/…/tcp/4001: Error: listen EADDRINUSE: …".
    const failed = [...e.message.matchAll(/^ {2}(\/\S+): (.*)$/gm)].map(([, addr, why]) => {
      const code = /\b(E[A-Z]+)\b/.exec(why)?.[1]
      const reason = (code && LISTEN_REASONS[code]) ?? why.replace(/^\w*Error: /, '')
      return `--listen ${addr}: ${reason}`
    })
    return failed.length > 0 ? failed.join('; ') : `--listen: ${e.message.split('\n')[0]}`
  }
  return undefined
}

function portOf(hostPort: string): number | undefined {
  try {
    return parseHostPort(hostPort).port
  } catch {
    return undefined
  }
}

function sandboxLine(s: { available: boolean; acceptsForeign: boolean; reason: string }): string {
  if (s.available) return s.reason
  return s.acceptsForeign ? s.reason : `tasks from other nodes are refused: ${s.reason}`
}

function meshNote(event: string, issuer: boolean, dataDir: string): string {
  const dirFlag = dataDir === resolveDataDir(undefined) ? '' : ` --data-dir ${dataDir}`
  const add = issuer
    ? `  add a machine: run \`gridnode invite${dirFlag}\` here, then \`gridnode start --join <token>\` there\n`
    : ''
  if (event === 'created') return `  created a new private mesh (this node holds its key)\n${add}`
  if (event === 'joined') return '  joined the mesh by invitation; later starts need no --join\n'
  return add
}

async function waitForShutdown(
  daemon: { stop(): Promise<void>; log: { info(o: object, m: string): void } },
  withParent: boolean,
): Promise<void> {
  await new Promise<void>((resolve) => {
    let stopping = false
    const stop = (why: string) => {
      if (stopping) return
      stopping = true
      daemon.log.info({ why }, 'stopping')
      // A second signal, or a stop that hangs, ends the process anyway: within 5 s of SIGTERM,
      // as supervisors expect (systemd's stop timeout is longer; it kills what is left).
      const force = setTimeout(() => process.exit(1), 4_500)
      force.unref()
      daemon.stop().then(resolve, resolve)
    }
    process.once('SIGINT', () => stop('SIGINT'))
    process.once('SIGTERM', () => stop('SIGTERM'))
    if (withParent) {
      const parent = process.ppid
      const watch = setInterval(() => {
        if (process.ppid !== parent) stop('parent exited')
      }, 250)
      watch.unref()
    }
  })
  // libp2p may leave sockets half-closed for a moment; a stopped daemon has nothing left to do.
  setTimeout(() => process.exit(0), 200).unref()
}
