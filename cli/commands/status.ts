import type { Command } from 'commander'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { type ClientFlags, formatMB, printJson } from '../output.ts'

export interface StatusView {
  peerId: string
  addrs: string[]
  mesh: string
  version: string
  dataDir: string
  uptimeMs: number
  members: number
  capacity: {
    cores: number
    slots: number
    freeSlots: number
    running: number
    memoryTotalMB: number
    memoryFreeMB: number
    load1: number
    gpus: Array<{ index: number; name: string; memoryTotalMB?: number }>
    gpuNote?: string
  }
  connections: Array<{ peerId: string; addr: string; direction: string }>
  storage?: { ok: boolean; error?: string; since?: number; pendingResults?: number }
  membership?: {
    issuer: boolean
    verifiedMembers: number
    revocations: number
    /** Set once the issuer revoked this node. */
    revokedAt?: string
    refused: Record<string, number>
  }
  scheduler?: Record<string, unknown>
  /** Adverts of other members dropped for coming faster than one per 25 ms. */
  advertsTooSoon?: number
  sandbox?: { mode: string; available: boolean; acceptsForeign: boolean; reason: string }
}

function refusedLine(s: StatusView): string | undefined {
  const counts: Record<string, number> = { ...(s.membership?.refused ?? {}) }
  for (const k of ['refusedClaims', 'refusedResults', 'refusedPushes']) {
    const v = s.scheduler?.[k]
    if (typeof v === 'number' && v > 0) counts[k] = v
  }
  if (s.advertsTooSoon !== undefined && s.advertsTooSoon > 0) counts.advertsTooSoon = s.advertsTooSoon
  const parts = Object.entries(counts).map(([k, v]) => `${k} ${v}`)
  return parts.length > 0 ? `refused     ${parts.join(', ')}` : undefined
}

/** What a revoked node says of itself (status, peers): members refuse it; what to do. */
export function revokedLine(at: string): string {
  return `REVOKED     this node was revoked from the mesh at ${at}: every member refuses it. To come back, ask the mesh's issuer for an invitation (gridnode invite) and start with it in another --data-dir.`
}

export function registerStatus(program: Command): void {
  program
    .command('status')
    .description("this node's identity, addresses, capacity and connections")
    .option('--data-dir <dir>', 'which local daemon to ask (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print one JSON object')
    .action(async (opts: ClientFlags) => {
      const s = await DaemonClient.open(opts).request<StatusView>('GET', '/v1/status')
      if (opts.json) return printJson(s)
      const c = s.capacity
      const gpus =
        c.gpus.length === 0
          ? `none${c.gpuNote ? ` (${c.gpuNote})` : ''}`
          : c.gpus.map((g) => `${g.index}: ${g.name}`).join(', ')
      process.stdout.write(
        [
          `peer ID     ${s.peerId}`,
          `mesh        ${s.mesh}  (${s.members} other members known, ${s.connections.length} connections${
            s.membership?.issuer ? '; this node holds the mesh key' : ''
          })`,
          `version     ${s.version}, up ${Math.round(s.uptimeMs / 1000)} s, data dir ${s.dataDir}`,
          `slots       ${c.freeSlots} free of ${c.slots} (${c.cores} cores, ${c.running} tasks running)`,
          `memory      ${formatMB(c.memoryFreeMB)} free of ${formatMB(c.memoryTotalMB)}, load ${c.load1.toFixed(2)}`,
          `GPUs        ${gpus}`,
          ...(s.membership?.revokedAt ? [revokedLine(s.membership.revokedAt)] : []),
          ...(s.sandbox
            ? [
                `sandbox     ${s.sandbox.mode}: ${s.sandbox.acceptsForeign ? '' : 'REFUSING tasks from other nodes: '}${s.sandbox.reason}`,
              ]
            : []),
          ...(s.storage && !s.storage.ok
            ? [
                `job store   FAILING since ${new Date(s.storage.since ?? Date.now()).toISOString()}: ${s.storage.error} (${s.storage.pendingResults ?? 0} results waiting; nothing acknowledged until it recovers)`,
              ]
            : []),
          ...[refusedLine(s)].filter((l): l is string => l !== undefined),
          'addresses',
          ...s.addrs.map((a) => `  ${a}`),
        ].join('\n') + '\n',
      )
    })
}
