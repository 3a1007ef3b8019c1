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
          `mesh        ${s.mesh}  (${s.members} other members known, ${s.connections.length} connections)`,
          `version     ${s.version}, up ${Math.round(s.uptimeMs / 1000)} s, data dir ${s.dataDir}`,
          `slots       ${c.freeSlots} free of ${c.slots} (${c.cores} cores, ${c.running} tasks running)`,
          `memory      ${formatMB(c.memoryFreeMB)} free of ${formatMB(c.memoryTotalMB)}, load ${c.load1.toFixed(2)}`,
          `GPUs        ${gpus}`,
          'addresses',
          ...s.addrs.map((a) => `  ${a}`),
        ].join('\n') + '\n',
      )
    })
}
