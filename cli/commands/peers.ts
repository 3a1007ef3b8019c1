import type { Command } from 'commander'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { type ClientFlags, formatMB, printJson, shortId, table } from '../output.ts'
import { revokedLine } from './status.ts'

export interface PeerView {
  peerId: string
  version: string
  cpus: number
  slots: number
  freeSlots: number
  running: number
  ready: number
  memoryTotalMB: number
  memoryFreeMB: number
  load1: number
  gpus: Array<{ index: number; name: string; free: boolean }>
  lastSeenMs: number
  rttMs: number | null
  connected: boolean
}

/** The part of /v1/status the table's own row shows. */
interface SelfStatus {
  peerId: string
  membership?: { revokedAt?: string }
  capacity: {
    slots: number
    freeSlots: number
    memoryTotalMB: number
    memoryFreeMB: number
    load1: number
    gpus: unknown[]
  }
}

export function registerPeers(program: Command): void {
  program
    .command('peers')
    .description('every known member of the mesh with its capacity advert, this node first (marked)')
    .option('--data-dir <dir>', 'which local daemon to ask (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print one JSON array')
    .action(async (opts: ClientFlags) => {
      const client = DaemonClient.open(opts)
      const peers = await client.request<PeerView[]>('GET', '/v1/peers')
      if (opts.json) return printJson(peers)
      const me = await client.request<SelfStatus>('GET', '/v1/status')
      const c = me.capacity
      const rows = [['PEER', 'SLOTS', 'READY', 'MEMORY FREE', 'LOAD', 'GPUS', 'SEEN', 'PING']]
      // This node first, marked: it runs tasks too.
      rows.push([
        `${shortId(me.peerId)} (this node)`,
        `${c.freeSlots}/${c.slots}`,
        '-',
        `${formatMB(c.memoryFreeMB)}/${formatMB(c.memoryTotalMB)}`,
        c.load1.toFixed(2),
        c.gpus.length === 0 ? '-' : String(c.gpus.length),
        '-',
        '-',
      ])
      for (const p of peers) {
        rows.push([
          shortId(p.peerId),
          `${p.freeSlots}/${p.slots}`,
          String(p.ready),
          `${formatMB(p.memoryFreeMB)}/${formatMB(p.memoryTotalMB)}`,
          p.load1.toFixed(2),
          p.gpus.length === 0 ? '-' : `${p.gpus.filter((g) => g.free).length}/${p.gpus.length}`,
          `${(p.lastSeenMs / 1000).toFixed(1)} s ago`,
          p.rttMs === null ? '-' : `${p.rttMs} ms`,
        ])
      }
      process.stdout.write(`${table(rows)}\n`)
      if (me.membership?.revokedAt) process.stdout.write(`${revokedLine(me.membership.revokedAt)}\n`)
      else if (peers.length === 0)
        process.stdout.write('no other members known yet (is a --bootstrap peer or mDNS reachable?)\n')
    })
}
