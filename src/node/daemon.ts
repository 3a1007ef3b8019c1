/**
 * The daemon's lifecycle: lock the data dir, load the identity, probe the
 * machine, start libp2p, discovery, adverts, the scheduler driver and the
 * local API; on stop, undo it all in reverse so peers see us leave promptly.
 */

import { existsSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { probeSandbox, type SandboxStatus } from '../executor/index.ts'
import { freshDaemonCwd } from '../executor/scratch.ts'
import { PROTOCOLS } from '../protocol/index.ts'
import { ADDRESS_BOOK_FILE, AddressBook, hostOf } from './address-book.ts'
import { Adverts, SOFTWARE_VERSION } from './adverts.ts'
import { ApiServer } from './api.ts'
import type { NodeConfig } from './config/schema.ts'
import { parseHostPort } from './config/schema.ts'
import { createNode, dhtProtocol, GOSSIP_PROTOCOLS, type GridLibp2p } from './create-node.ts'
import { Activity } from './dashboard/activity.ts'
import { DashboardHub } from './dashboard/hub.ts'
import { registerDashboardRoutes } from './dashboard/routes.ts'
import {
  ensureDataDir,
  IDENTITY_FILE,
  loadIdentity,
  loadOrCreateToken,
  lockDataDir,
  newIdentity,
  readIdentity,
  removeApiInfo,
  writeApiInfo,
} from './data-dir.ts'
import { Discovery } from './discovery.ts'
import { Driver } from './driver.ts'
import { BadConfigError } from './errors.ts'
import { createLogger, type Logger } from './logger.ts'
import {
  CERT_FILE,
  INVITES_FILE,
  ISSUED_FILE,
  loadMesh,
  MESH_FILE,
  MESH_KEY_FILE,
  REVOCATIONS_FILE,
  SWARM_KEY_FILE,
} from './membership/files.ts'
import { Membership, randomMeshName } from './membership/membership.ts'
import { registerMembershipRoutes } from './membership/routes.ts'
import {
  checkJoinTarget,
  checkToken,
  createMesh,
  redeemInvitation,
  removeIfEmpty,
} from './membership/setup.ts'
import { MetricsServer, NodeMetrics, registerMetricsRoute } from './metrics.ts'
import { PolicyController } from './policy/controller.ts'
import { registerPolicyRoutes } from './policy/routes.ts'
import { type ProbedCapacity, probeCapacity } from './probe/capacity.ts'
import { registerRoutes } from './routes.ts'

export interface Daemon {
  readonly node: GridLibp2p
  readonly config: NodeConfig
  readonly capacity: ProbedCapacity
  readonly apiUrl: string
  readonly log: Logger
  readonly membership: Membership
  /** What happened to the mesh credentials at this start. */
  readonly meshEvent: 'created' | 'joined' | 'loaded'
  /** Whether tasks of other nodes run sandboxed here, and why (start banner, `gridnode status`). */
  readonly sandbox: SandboxStatus
  /** The Prometheus address of `--metrics`, when given. */
  readonly metricsUrl?: string
  stop(): Promise<void>
}

export interface StartOptions {
  /** A join token (`gridnode start --join`): redeemed before anything else when the data dir has no mesh. */
  join?: string
  /** Owner-policy flags of `gridnode start` (`when`, `maxCpuShare`, `hours`): written to policy.json. */
  policy?: Record<string, unknown>
  /** The caller prints a banner with the same facts (a person at a terminal): `starting` and `ready` log at debug. */
  banner?: boolean
}

/**
 * Loads the mesh credentials, joining or creating a mesh first when the data
 * dir has none; the config's mesh name becomes the mesh's own.
 */
async function meshFor(config: NodeConfig, join: string | undefined, log: Logger) {
  const token = join === undefined ? undefined : checkToken(join)
  let event: Daemon['meshEvent'] = 'loaded'
  if (token !== undefined && checkJoinTarget(config.dataDir, token) === 'join') {
    const existing = readIdentity(config.dataDir)
    const key = existing ?? (await newIdentity())
    log.info({ mesh: token.mesh, inviter: token.issuer }, 'redeeming the invitation')
    await redeemInvitation(config.dataDir, token, { key, isNew: existing === undefined })
    event = 'joined'
  } else if (token !== undefined) {
    log.warn({ mesh: token.mesh }, 'already a member of this mesh; --join ignored')
  }
  const privateKey = await loadIdentity(config.dataDir)
  let creds = loadMesh(config.dataDir)
  if (creds === undefined) {
    creds = await createMesh(config.dataDir, config.mesh || randomMeshName(), privateKey)
    event = 'created'
  } else if (config.mesh && config.mesh !== creds.info.name) {
    throw new BadConfigError(
      `--mesh ${config.mesh}: this data dir belongs to mesh "${creds.info.name}"; use another --data-dir for another mesh`,
    )
  }
  const self = privateKey.publicKey.toString()
  const bootstrap = [
    ...config.bootstrap,
    ...creds.info.bootstrap.filter((a) => !a.endsWith(`/p2p/${self}`) && !config.bootstrap.includes(a)),
  ]
  return { privateKey, creds, event, config: { ...config, mesh: creds.info.name, bootstrap } }
}

export async function startDaemon(
  initial: NodeConfig,
  log = createLogger(initial),
  options: StartOptions = {},
): Promise<Daemon> {
  const existedBefore = existsSync(initial.dataDir)
  const entriesBefore = existedBefore ? new Set(readdirSync(initial.dataDir)) : undefined
  ensureDataDir(initial.dataDir)
  const unlock = lockDataDir(initial.dataDir)
  /** Set once this start made a new mesh: a start that then fails takes it back (forgetNewMesh). */
  let created = false
  let failed = false
  // Unwound just before the lock goes, so no other start can have taken the dir meanwhile.
  const undo: Array<() => Promise<void> | void> = [
    unlock,
    () => {
      if (failed && created) forgetNewMesh(initial.dataDir, entriesBefore)
    },
  ]
  try {
    const [meshOutcome, capacityOutcome] = await Promise.allSettled([
      meshFor(initial, options.join, log),
      probeCapacity({ cpus: initial.cpus, gpus: initial.gpus }),
    ])
    if (meshOutcome.status === 'fulfilled') created = meshOutcome.value.event === 'created'
    if (meshOutcome.status === 'rejected' || capacityOutcome.status === 'rejected') {
      if (created) forgetNewMesh(initial.dataDir, entriesBefore)
      unlock()
      undo.length = 0
      if (options.join !== undefined) removeIfEmpty(initial.dataDir, existedBefore)
      throw meshOutcome.status === 'rejected'
        ? meshOutcome.reason
        : (capacityOutcome as PromiseRejectedResult).reason
    }
    const mesh = meshOutcome.value
    const capacity = (capacityOutcome as PromiseFulfilledResult<Awaited<ReturnType<typeof probeCapacity>>>)
      .value
    const { config, privateKey, creds } = mesh
    // Members' last addresses (address-book.ts): dialed at start with the bootstrap addresses.
    const book = new AddressBook(config.dataDir)
    const self = privateKey.publicKey.toString()
    const dialList = [
      ...config.bootstrap,
      ...book
        .dialable(self)
        .slice(0, 32)
        .filter((a) => !config.bootstrap.includes(a)),
    ]
    // Where tasks run (README): function tasks on worker threads share this process's cwd, so it
    // is an empty dir of the data dir, never the directory the daemon was started from.
    process.chdir(freshDaemonCwd(config.dataDir))
    const membership = await Membership.open({
      dataDir: config.dataDir,
      creds,
      log,
      certValidityMs: config.certValidityMs,
      onRevoked: (peer) => {
        book.forget(peer)
        driver.peerGone(peer)
      },
    })
    const metrics = new NodeMetrics()
    const node = await createNode({ ...config, bootstrap: dialList }, privateKey, {
      swarmKey: creds.swarmKey,
      gater: membership.gater(),
      metrics: metrics.registry,
    })
    undo.push(() => node.stop())
    const peerId = node.peerId.toString()
    const startupLog = options.banner ? log.debug.bind(log) : log.info.bind(log)
    startupLog(
      {
        peerId,
        mesh: config.mesh,
        slots: capacity.slots,
        gpus: capacity.gpus.length,
        gpuNote: capacity.gpuNote,
      },
      'starting',
    )
    await membership.attach(node, [dhtProtocol(config.mesh), ...GOSSIP_PROTOCOLS, ...PROTOCOLS])
    await node.start()
    membership.start()
    undo.push(() => membership.stop())

    // Bundled (npm run build), this code runs from dist/gridnode.js and the worker entry sits beside it.
    const workerUrl = import.meta.url.endsWith('.js') ? new URL('./worker.js', import.meta.url) : undefined
    const policy = new PolicyController({
      dataDir: config.dataDir,
      slots: capacity.slots,
      log,
      sandbox: () => driver.sandboxState(),
      onSet: () => void driver.keepHouse(),
    })
    policy.override(options.policy ?? {})
    // policy.json's `sandbox`, when set, wins over --sandbox / config.json (it takes effect at a start).
    const sandbox = await startSandbox(policy.policy.sandbox ?? config.sandbox, config, log)
    if (sandbox.host !== undefined) undo.push(() => sandbox.host?.close())
    const driver = new Driver(node, {
      blobQuota: policy.policy.blobQuota,
      sandbox,
      config,
      capacity,
      log,
      dbPath: join(config.dataDir, 'jobs.db'),
      workerUrl,
      isMember: (peer) => membership.isMember(peer),
      privateKey,
    })
    // From here the driver holds the job store (its lock too): a start that fails later closes it.
    undo.push(() => driver.stop())
    const adverts = new Adverts(node, {
      mesh: config.mesh,
      intervalMs: config.advertIntervalMs,
      expiryFactor: config.advertExpiryFactor,
      cores: capacity.cores,
      gpus: capacity.gpus,
      memoryTotalMB: capacity.memoryTotalMB,
      log,
      sched: () => driver.schedulerAdvert(),
      busyGpus: () => driver.busyGpus(),
      onPeerUp: (peer) => driver.peerConnected(peer),
      onAdvert: (peer, advert) => driver.advertReceived(peer, advert),
      onPeerGone: (peer) => driver.peerGone(peer),
      isMember: (peer) => membership.isMember(peer),
      admit: (peer, cert) => membership.admitByCertificate(peer, cert),
      certificate: () => membership.certificate(),
    })
    driver.attachAdverts(adverts)
    metrics.attach({
      stats: () => driver.stats(),
      advert: () => driver.schedulerAdvert(),
      members: () => adverts.table.size,
      connections: () => node.getConnections().length,
      linkVerifications: () => driver.linkVerifications(),
    })
    driver.observe({ step: (e, c) => metrics.observe(e, c), blob: (d, n) => metrics.blob(d, n) })
    const activity = new Activity(peerId)
    driver.observe({ step: (e, c) => activity.step(e, c) })
    adverts.setFlows(() => activity.advertFlows(Date.now()))
    node.addEventListener('peer:disconnect', (evt) => adverts.forget(evt.detail.toString()))
    // A peer is identified before its membership is proved: what it announced waits here until it
    // is a member, so peers that only hold the swarm key (a former member, anyone who saw a token)
    // cannot crowd members out of the book.
    const announced = new Map<string, { addrs: string[]; host: string | undefined; at: number }>()
    node.addEventListener('peer:identify', (evt) => {
      const { peerId, listenAddrs, connection } = evt.detail
      const peer = peerId.toString()
      announced.delete(peer)
      announced.set(peer, {
        addrs: listenAddrs.map((a) => a.toString()),
        host: hostOf(connection.remoteAddr.toString()),
        at: Date.now(),
      })
      if (announced.size > 256) announced.delete(announced.keys().next().value as string)
    })
    const saveBook = () => {
      for (const [peer, a] of announced) {
        if (!membership.isMember(peer)) continue
        book.note(peer, a.addrs, a.host, a.at)
        announced.delete(peer)
      }
      try {
        book.save((peer) => membership.isMember(peer))
      } catch (err) {
        log.warn({ err: (err as Error).message }, 'cannot save the address book')
      }
    }
    const bookTimer = setInterval(saveBook, ADDRESS_BOOK_SAVE_MS)
    bookTimer.unref()
    undo.push(() => {
      clearInterval(bookTimer)
      saveBook()
    })
    const discovery = new Discovery(node, {
      mesh: config.mesh,
      bootstrap: dialList,
      intervalMs: config.rendezvousIntervalMs,
      log,
    })

    await driver.start()
    driver.attachPolicy(() => policy.policy)
    policy.start(driver)
    undo.push(() => policy.stop())
    adverts.start()
    undo.push(() => adverts.stop())
    discovery.start()
    undo.push(() => discovery.stop())

    const api = new ApiServer(loadOrCreateToken(config.dataDir), log)
    const startedAt = Date.now()
    registerRoutes(api, {
      node,
      config,
      capacity,
      adverts,
      driver,
      startedAt,
      version: SOFTWARE_VERSION,
      membership,
      sandbox: sandbox.status,
    })
    registerMembershipRoutes(api, membership)
    registerPolicyRoutes(api, policy)
    registerMetricsRoute(api, metrics)
    const dashboard = {
      node,
      driver,
      adverts,
      capacity,
      mesh: config.mesh,
      version: SOFTWARE_VERSION,
      activity,
      membership,
    }
    const dashboardHub = new DashboardHub(dashboard)
    registerDashboardRoutes(api, dashboardHub, dashboard)
    undo.push(() => dashboardHub.close())
    const { host, port } = parseHostPort(config.api)
    const apiUrl = await api.listen(host, port)
    undo.push(() => api.close())
    writeApiInfo(config.dataDir, { url: apiUrl, pid: process.pid, peerId })
    undo.push(() => removeApiInfo(config.dataDir))
    let metricsUrl: string | undefined
    if (config.metrics !== '') {
      const server = new MetricsServer(metrics)
      const at = parseHostPort(config.metrics)
      metricsUrl = await server.listen(at.host, at.port)
      undo.push(() => server.close())
    }
    startupLog({ api: apiUrl, metrics: metricsUrl, addrs: node.getMultiaddrs().map(String) }, 'ready')

    let stopping: Promise<void> | undefined
    return {
      node,
      config,
      capacity,
      apiUrl,
      log,
      membership,
      meshEvent: mesh.event,
      sandbox: sandbox.status,
      metricsUrl,
      stop: () => {
        stopping ??= unwind(undo, log)
        return stopping
      },
    }
  } catch (err) {
    failed = true
    await unwind(undo, log)
    throw err
  }
}

/** How often the address book is written when it changed (and at stop). */
const ADDRESS_BOOK_SAVE_MS = 30_000

/**
 * A first start that fails (a bad flag, a port in use) takes back the mesh it made on the way,
 * or `--join` with the right token would be refused there for good ("this data dir already
 * belongs to mesh ..."); nobody else can know a mesh that never started. A data dir this start
 * made goes whole; in one that was there (`before`: its entries then), only the files that tie
 * it to a mesh and were not there before (whatever else the start wrote stays: the dir may be
 * shared with other programs, and nothing there binds it to a mesh).
 */
function forgetNewMesh(dataDir: string, before: Set<string> | undefined): void {
  try {
    if (before === undefined) rmSync(dataDir, { recursive: true, force: true })
    else
      for (const name of MESH_BINDING_FILES)
        if (!before.has(name)) rmSync(join(dataDir, name), { force: true })
  } catch {
    // Best effort: the start's own error is the one to report.
  }
}

/** The files of a data dir that make it a member of a mesh (forgetNewMesh). */
const MESH_BINDING_FILES = [
  IDENTITY_FILE,
  SWARM_KEY_FILE,
  MESH_FILE,
  MESH_KEY_FILE,
  CERT_FILE,
  REVOCATIONS_FILE,
  INVITES_FILE,
  ISSUED_FILE,
  ADDRESS_BOOK_FILE,
]

/**
 * Probes the sandbox once (a real sandboxed worker up to its first frame).
 * `--sandbox bwrap` without a working one is a start failure; `auto` without
 * one refuses other nodes' tasks; `none` runs them unsandboxed.
 */
async function startSandbox(mode: NodeConfig['sandbox'], config: NodeConfig, log: Logger) {
  // Bundled (dist/), the sandboxed worker sits beside this chunk and dist/ is bound read-only.
  const bundled = import.meta.url.endsWith('.js')
  const probed = await probeSandbox(mode, {
    baseDir: join(config.dataDir, 'sandbox'),
    workerUrl: bundled ? new URL('./sandbox-worker.js', import.meta.url) : undefined,
    codeDir: bundled ? fileURLToPath(new URL('.', import.meta.url)) : undefined,
  })
  const { status } = probed
  if (mode === 'bwrap' && !status.available) {
    throw new BadConfigError(`--sandbox bwrap: ${status.reason}`)
  }
  const level = status.available ? 'info' : 'warn'
  log[level](
    { mode: status.mode, available: status.available, acceptsForeign: status.acceptsForeign },
    status.reason,
  )
  return { status, host: probed.host }
}

async function unwind(undo: Array<() => Promise<void> | void>, log: Logger): Promise<void> {
  for (const step of undo.reverse()) {
    try {
      await step()
    } catch (err) {
      log.warn({ err: (err as Error).message }, 'error while stopping')
    }
  }
}
