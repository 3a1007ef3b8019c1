/**
 * The control API's routes. Everything a CLI command or the client library
 * can ask of the daemon is here, backed by the driver and the peer table.
 */
import { inboundStatsOf } from '../protocol/rate-limit.ts'
import type { Adverts } from './adverts.ts'
import type { ApiServer } from './api.ts'
import type { NodeConfig } from './config/schema.ts'
import type { GridLibp2p } from './create-node.ts'
import type { Driver } from './driver.ts'
import { registerFileRoutes } from './files/routes.ts'
import { registerJobRoutes } from './job-routes.ts'
import { type ProbedCapacity, sampleLoad } from './probe/capacity.ts'

export interface RouteContext {
  node: GridLibp2p
  config: NodeConfig
  capacity: ProbedCapacity
  adverts: Adverts
  driver: Driver
  startedAt: number
  version: string
  /** The sandbox's mode and availability (the start's probe). */
  sandbox?: { mode: string; available: boolean; acceptsForeign: boolean; reason: string }
  /** Membership of the private mesh (status shows what it refused). */
  membership?: {
    isIssuer: boolean
    refused: Record<string, number>
    list(): { members: unknown[]; revocations: unknown[]; self: { revokedAt?: string } }
  }
}

export function registerRoutes(api: ApiServer, ctx: RouteContext): void {
  api.route('GET', '/v1/status', () => ({ ...status(ctx), api: { channels: api.channelCount } }))
  api.route('GET', '/v1/peers', () => peers(ctx))
  registerJobRoutes(api, ctx.driver)
  registerFileRoutes(api, ctx.driver)
}

function status(ctx: RouteContext) {
  const { node, config, capacity } = ctx
  const peerId = node.peerId.toString()
  const sched = ctx.driver.schedulerAdvert()
  const load = sampleLoad()
  return {
    peerId,
    addrs: node.getMultiaddrs().map((a) => a.toString()),
    mesh: config.mesh,
    version: ctx.version,
    dataDir: config.dataDir,
    pid: process.pid,
    uptimeMs: Date.now() - ctx.startedAt,
    capacity: {
      cores: capacity.cores,
      slots: capacity.slots,
      freeSlots: sched.freeSlots,
      running: sched.running,
      memoryTotalMB: capacity.memoryTotalMB,
      memoryFreeMB: load.memoryFreeMB,
      load1: load.load1,
      gpus: capacity.gpus,
      gpuNote: capacity.gpuNote,
    },
    members: ctx.adverts.table.size,
    rssMB: Math.round(process.memoryUsage().rss / 1048576),
    advertDelayMs: ctx.adverts.delayStats(),
    advertsRejected: ctx.adverts.rejectedCount,
    /** Adverts of other members that passed the checks, and those dropped for coming too soon. */
    advertsPassed: ctx.adverts.passedCount,
    advertsTooSoon: ctx.adverts.tooSoonCount,
    scheduler: ctx.driver.stats(),
    /** Job files: bytes served to and fetched from peers, pieces refused or resumed, outputs held for owners. */
    files: ctx.driver.files?.stats(),
    /** Whether results are being written; ok: false (disk full...) means nothing is acknowledged until it is. */
    storage: ctx.driver.hub.storage(),
    /** Inbound requests per kind (received, rate-limited, dropped on a handler failure) and streams closed. */
    inbound: inboundStatsOf(ctx.node).snapshot(),
    membership: ctx.membership && membershipStatus(ctx.membership),
    /** Whether tasks of other nodes run sandboxed here (`available`), are taken at all (`acceptsForeign`), and why. */
    sandbox: ctx.sandbox,
    connections: node.getConnections().map((c) => ({
      peerId: c.remotePeer.toString(),
      addr: c.remoteAddr.toString(),
      direction: c.direction,
    })),
  }
}

function membershipStatus(m: NonNullable<RouteContext['membership']>) {
  const list = m.list()
  return {
    issuer: m.isIssuer,
    verifiedMembers: list.members.length,
    revocations: list.revocations.length,
    /** When the issuer revoked this node (members refuse it from then on); absent while it is a member. */
    revokedAt: list.self.revokedAt,
    refused: { ...m.refused },
  }
}

function peers(ctx: RouteContext) {
  const now = Date.now()
  return ctx.adverts.table.list().map((e) => ({
    peerId: e.peerId,
    version: e.advert.version,
    cpus: e.advert.cpus,
    slots: e.advert.sched.slots,
    freeSlots: e.advert.sched.freeSlots,
    running: e.advert.sched.running,
    ready: e.advert.sched.ready.reduce((n: number, c: { count: number }) => n + c.count, 0),
    memoryTotalMB: e.advert.memoryTotalMB,
    memoryFreeMB: e.advert.memoryFreeMB,
    load1: e.advert.load1,
    gpus: e.advert.gpus,
    /** What the peer accepts from other nodes (its trust policy); absent = everything. */
    accepts: e.advert.sched.accepts ?? null,
    lastSeenMs: now - e.lastSeenAt,
    rttMs: e.rttMs ?? null,
    connected: ctx.node.getConnections().some((c) => c.remotePeer.toString() === e.peerId),
  }))
}
