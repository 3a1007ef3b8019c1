import { isValidPeerId } from '../../protocol/peer-id.ts'
import { DEFAULT_COST_BUDGET } from '../../protocol/rate-limit.ts'
import { BadConfigError } from '../errors.ts'

/** Everything a daemon is configured with. Flags override the data dir's config.json, which overrides defaults. */
export interface NodeConfig {
  dataDir: string
  /** Mesh name for a new mesh; '' = generated. A data dir that has a mesh keeps its own name. */
  mesh: string
  listen: string[]
  bootstrap: string[]
  mdns: boolean
  /** host:port of the local control API; port 0 = any free port. */
  api: string
  /** Task slots; undefined = the machine's core count. */
  cpus?: number
  /** 'auto' (probe), 'none', or a comma list of GPU indexes. */
  gpus: string
  logLevel: 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'silent'
  logFormat: 'json' | 'pretty'
  /** Capacity advert heartbeat; peers expire after `advertExpiryFactor` missed beats. */
  advertIntervalMs: number
  advertExpiryFactor: number
  /** How often the DHT rendezvous looks for other members once the mesh is stable. */
  rendezvousIntervalMs: number
  /** How long membership certificates this node issues stay valid (issuer only). */
  certValidityMs?: number
  /** Tasks of other nodes: `auto` (sandboxed if bubblewrap works, else refused), `bwrap` (required), `none` (unsandboxed). */
  sandbox: 'auto' | 'bwrap' | 'none'
  /** host:port serving /metrics alone, without the API token (`--metrics`); '' = only on the API. */
  metrics: string
  /**
   * What one peer's requests may cost this node's event loop (ms per second, and the burst above
   * it; src/protocol/rate-limit.ts CostBudget): past it, that peer's streams wait. config.json only.
   */
  peerCostMsPerSecond: number
  peerCostBurstMs: number
}

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'silent'] as const
const MESH_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

export function defaultConfig(dataDir: string): NodeConfig {
  return {
    dataDir,
    mesh: '',
    listen: ['/ip4/0.0.0.0/tcp/0'],
    bootstrap: [],
    mdns: true,
    api: '127.0.0.1:0',
    gpus: 'auto',
    logLevel: 'info',
    logFormat: 'pretty',
    advertIntervalMs: 1000,
    advertExpiryFactor: 3,
    rendezvousIntervalMs: 10_000,
    sandbox: 'auto',
    metrics: '',
    peerCostMsPerSecond: DEFAULT_COST_BUDGET.msPerSecond,
    peerCostBurstMs: DEFAULT_COST_BUDGET.burstMs,
  }
}

/** Checks one merged config; every message names the flag a person would fix. */
export function validateConfig(c: NodeConfig): NodeConfig {
  if (c.mesh !== '' && !MESH_NAME.test(c.mesh)) {
    throw new BadConfigError(`--mesh ${JSON.stringify(c.mesh)}: use 1-64 letters, digits, '.', '_' or '-'`)
  }
  for (const [flag, list] of [
    ['--listen', c.listen],
    ['--bootstrap', c.bootstrap],
  ] as const) {
    for (const a of list) {
      if (typeof a !== 'string' || !a.startsWith('/')) {
        throw new BadConfigError(
          `${flag} ${JSON.stringify(a)}: expected a multiaddr such as /ip4/127.0.0.1/tcp/4001`,
        )
      }
    }
  }
  for (const a of c.bootstrap) {
    // A peer is joined by its ID: without one, the address is dialed to no end.
    const id = /\/p2p\/([^/]+)$/.exec(a)?.[1]
    if (id === undefined || !isValidPeerId(id)) {
      throw new BadConfigError(
        `--bootstrap ${JSON.stringify(a)}: expected the peer's address ending in /p2p/<peerId>, ` +
          'as `gridnode start` prints it (e.g. /ip4/192.168.1.5/tcp/4001/p2p/12D3KooW…)',
      )
    }
  }
  if (c.listen.length === 0) throw new BadConfigError('--listen: at least one address is needed')
  const { host } = parseHostPort(c.api)
  if (!(host === 'localhost' || host === '::1' || /^127\.\d+\.\d+\.\d+$/.test(host))) {
    // The control API runs code on this machine's behalf: it stays on loopback.
    throw new BadConfigError(
      `--api ${c.api}: the control API listens on loopback only (127.0.0.1, ::1 or localhost)`,
    )
  }
  if (c.cpus !== undefined && (!Number.isInteger(c.cpus) || c.cpus < 1 || c.cpus > 4096)) {
    throw new BadConfigError(`--cpus ${c.cpus}: expected a whole number of task slots from 1 to 4096`)
  }
  if (!(LOG_LEVELS as readonly string[]).includes(c.logLevel)) {
    throw new BadConfigError(`--log-level ${c.logLevel}: expected one of ${LOG_LEVELS.join(', ')}`)
  }
  if (c.logFormat !== 'json' && c.logFormat !== 'pretty') {
    throw new BadConfigError(`--log-format ${c.logFormat}: expected json or pretty`)
  }
  for (const [name, v] of [
    ['advertIntervalMs', c.advertIntervalMs],
    ['rendezvousIntervalMs', c.rendezvousIntervalMs],
    ['advertExpiryFactor', c.advertExpiryFactor],
    ['peerCostMsPerSecond', c.peerCostMsPerSecond],
    ['peerCostBurstMs', c.peerCostBurstMs],
  ] as const) {
    if (!Number.isFinite(v) || v <= 0) throw new BadConfigError(`${name} ${v}: expected a positive number`)
  }
  if (c.sandbox !== 'auto' && c.sandbox !== 'bwrap' && c.sandbox !== 'none') {
    throw new BadConfigError(`--sandbox ${c.sandbox}: expected auto, bwrap or none`)
  }
  if (c.metrics !== '') c.metrics = metricsAddress(c.metrics)
  if (c.certValidityMs !== undefined && !(Number.isFinite(c.certValidityMs) && c.certValidityMs >= 1000)) {
    throw new BadConfigError(`certValidityMs ${c.certValidityMs}: expected at least 1000 (ms)`)
  }
  return c
}

/** `--metrics`: host:port, or a bare port (or :port) on loopback. */
export function metricsAddress(value: string): string {
  const v = String(value).trim()
  const bare = /^:?(\d{1,5})$/.exec(v)
  const address = bare ? `127.0.0.1:${bare[1]}` : v
  try {
    parseHostPort(address)
  } catch {
    throw new BadConfigError(
      `--metrics ${JSON.stringify(value)}: expected a port or host:port, e.g. 9464 or 127.0.0.1:9464`,
    )
  }
  return address
}

export function parseHostPort(value: string): { host: string; port: number } {
  const m = /^(\[[0-9a-fA-F:]+\]|[^:]+):(\d{1,5})$/.exec(value)
  const port = m ? Number(m[2]) : Number.NaN
  if (!m || port > 65535) {
    throw new BadConfigError(
      `--api ${JSON.stringify(value)}: expected host:port, e.g. 127.0.0.1:7070 (port 0 = any)`,
    )
  }
  const host = m[1].replace(/^\[|\]$/g, '')
  return { host, port }
}
