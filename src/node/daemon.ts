/**
 * The daemon's lifecycle: lock the data dir, load the identity, probe the
 * machine, start libp2p, discovery, adverts, the scheduler driver and the
 * local API; on stop, undo it all in reverse so peers see us leave promptly.
 */
import { join } from 'node:path'
import { Adverts, SOFTWARE_VERSION } from './adverts.ts'
import { ApiServer } from './api.ts'
import type { NodeConfig } from './config/schema.ts'
import { parseHostPort } from './config/schema.ts'
import { createNode, type GridLibp2p } from './create-node.ts'
import {
  ensureDataDir,
  loadIdentity,
  loadOrCreateToken,
  lockDataDir,
  removeApiInfo,
  writeApiInfo,
} from './data-dir.ts'
import { Discovery } from './discovery.ts'
import { Driver } from './driver.ts'
import { createLogger, type Logger } from './logger.ts'
import { type ProbedCapacity, probeCapacity } from './probe/capacity.ts'
import { registerRoutes } from './routes.ts'

export interface Daemon {
  readonly node: GridLibp2p
  readonly config: NodeConfig
  readonly capacity: ProbedCapacity
  readonly apiUrl: string
  readonly log: Logger
  stop(): Promise<void>
}

export async function startDaemon(config: NodeConfig, log = createLogger(config)): Promise<Daemon> {
  ensureDataDir(config.dataDir)
  const unlock = lockDataDir(config.dataDir)
  const undo: Array<() => Promise<void> | void> = [unlock]
  try {
    const [privateKey, capacity] = await Promise.all([
      loadIdentity(config.dataDir),
      probeCapacity({ cpus: config.cpus, gpus: config.gpus }),
    ])
    const node = await createNode(config, privateKey)
    undo.push(() => node.stop())
    const peerId = node.peerId.toString()
    log.info(
      {
        peerId,
        mesh: config.mesh,
        slots: capacity.slots,
        gpus: capacity.gpus.length,
        gpuNote: capacity.gpuNote,
      },
      'starting',
    )

    // Bundled (npm run build), this code runs from dist/gridnode.js and the worker entry sits beside it.
    const workerUrl = import.meta.url.endsWith('.js') ? new URL('./worker.js', import.meta.url) : undefined
    const driver = new Driver(node, {
      config,
      capacity,
      log,
      dbPath: join(config.dataDir, 'jobs.db'),
      workerUrl,
    })
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
    })
    driver.attachAdverts(adverts)
    node.addEventListener('peer:disconnect', (evt) => adverts.forget(evt.detail.toString()))
    const discovery = new Discovery(node, {
      mesh: config.mesh,
      bootstrap: config.bootstrap,
      intervalMs: config.rendezvousIntervalMs,
      log,
    })

    await driver.start()
    undo.push(() => driver.stop())
    adverts.start()
    undo.push(() => adverts.stop())
    discovery.start()
    undo.push(() => discovery.stop())

    const api = new ApiServer(loadOrCreateToken(config.dataDir), log)
    const startedAt = Date.now()
    registerRoutes(api, { node, config, capacity, adverts, driver, startedAt, version: SOFTWARE_VERSION })
    const { host, port } = parseHostPort(config.api)
    const apiUrl = await api.listen(host, port)
    undo.push(() => api.close())
    writeApiInfo(config.dataDir, { url: apiUrl, pid: process.pid, peerId })
    undo.push(() => removeApiInfo(config.dataDir))
    log.info({ api: apiUrl, addrs: node.getMultiaddrs().map(String) }, 'ready')

    let stopping: Promise<void> | undefined
    return {
      node,
      config,
      capacity,
      apiUrl,
      log,
      stop: () => {
        stopping ??= unwind(undo, log)
        return stopping
      },
    }
  } catch (err) {
    await unwind(undo, log)
    throw err
  }
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
