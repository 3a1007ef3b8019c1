/** Options for an Adverts under test: one node of 4 slots, all free, nothing else going on. */
import { pino } from 'pino'
import type { AdvertsOptions } from '../../src/node/adverts.ts'
import type { SchedulerAdvert } from '../../src/scheduler/types.ts'

export function advertsOptions(
  sched: Partial<SchedulerAdvert> = {},
  over: Partial<AdvertsOptions> = {},
): AdvertsOptions {
  return {
    mesh: 'm',
    intervalMs: 1000,
    expiryFactor: 3,
    cores: 4,
    gpus: [],
    memoryTotalMB: 1000,
    log: pino({ level: 'silent' }),
    sched: () => ({
      slots: 4,
      freeSlots: 4,
      memoryMB: 1000,
      freeMemoryMB: 1000,
      gpus: 0,
      freeGpus: 0,
      ready: [],
      running: 0,
      meanTaskMs: 0,
      ...sched,
    }),
    busyGpus: () => new Set(),
    onPeerUp: () => {},
    onAdvert: () => {},
    onPeerGone: () => {},
    ...over,
  }
}
