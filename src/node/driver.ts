/**
 * The one place that calls the scheduler: feeds it events from the network,
 * the executor and the clock, and carries out the commands it returns.
 * (Issue 2 stage: capacity only; the scheduler is wired in by issue 3.)
 */
import type { CapacityAdvert } from '../protocol/advert/codec.ts'
import type { SchedulerAdvert } from '../scheduler/types.ts'
import type { Adverts } from './adverts.ts'
import type { ApiServer } from './api.ts'
import type { NodeConfig } from './config/schema.ts'
import type { GridLibp2p } from './create-node.ts'
import type { Logger } from './logger.ts'
import type { ProbedCapacity } from './probe/capacity.ts'

export interface DriverOptions {
  config: NodeConfig
  capacity: ProbedCapacity
  log: Logger
  dbPath: string
}

export class Driver {
  private readonly opts: DriverOptions
  private adverts?: Adverts

  constructor(_node: GridLibp2p, opts: DriverOptions) {
    this.opts = opts
  }

  attachAdverts(adverts: Adverts): void {
    this.adverts = adverts
  }

  async start(): Promise<void> {}
  async stop(): Promise<void> {}

  schedulerAdvert(): SchedulerAdvert {
    const c = this.opts.capacity
    return {
      slots: c.slots,
      freeSlots: c.slots,
      memoryMB: c.memoryTotalMB,
      freeMemoryMB: c.memoryTotalMB,
      gpus: c.gpus.length,
      freeGpus: c.gpus.length,
      ready: [],
      running: 0,
      meanTaskMs: 0,
    }
  }

  busyGpus(): Set<number> {
    return new Set()
  }

  peerConnected(_peer: string): void {}
  advertReceived(_peer: string, _advert: CapacityAdvert): void {}
  peerGone(_peer: string): void {}
  registerRoutes(_api: ApiServer): void {}
}
