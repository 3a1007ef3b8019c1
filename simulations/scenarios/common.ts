/** Building blocks the scenario files share: node mixes, networks, task-size laws. */
import type { Dist, GossipSpec, JobPlan, NetworkSpec, NodeClass } from '../scenario.ts'

/** Laptops, desktops, servers and GPU boxes; speeds spread about 4x from slowest to fastest. */
export const HETEROGENEOUS: NodeClass[] = [
  {
    weight: 30,
    slots: { kind: 'choice', values: [2, 4] },
    speed: { kind: 'lognormal', median: 0.7, sigma: 0.2, min: 0.4, max: 1.2 },
    memoryMB: 8192,
    gpus: 0,
  },
  {
    weight: 40,
    slots: { kind: 'choice', values: [4, 8] },
    speed: { kind: 'lognormal', median: 1, sigma: 0.2, min: 0.5, max: 1.6 },
    memoryMB: 16384,
    gpus: 0,
  },
  {
    weight: 25,
    slots: { kind: 'choice', values: [16, 32] },
    speed: { kind: 'lognormal', median: 1.1, sigma: 0.15, min: 0.7, max: 1.6 },
    memoryMB: 65536,
    gpus: 0,
  },
  {
    weight: 5,
    slots: { kind: 'fixed', value: 8 },
    speed: { kind: 'lognormal', median: 1, sigma: 0.15, min: 0.6, max: 1.5 },
    memoryMB: 65536,
    gpus: 2,
    gpuSpeed: { kind: 'lognormal', median: 1, sigma: 0.3, min: 0.4, max: 2 },
  },
]

export const UNIFORM_NODES: NodeClass[] = [
  {
    weight: 1,
    slots: { kind: 'fixed', value: 4 },
    speed: { kind: 'fixed', value: 1 },
    memoryMB: 16384,
    gpus: 0,
  },
]

/** The real benches' machines: daemons of 2 slots on one host (the live harness, bench/jobs.ts). */
export const LOOPBACK_NODES: NodeClass[] = [
  {
    weight: 1,
    slots: { kind: 'fixed', value: 2 },
    speed: { kind: 'fixed', value: 1 },
    memoryMB: 8192,
    gpus: 0,
  },
]

/** Daemons on one host: 0.15-0.3 ms one way, as loopback TCP measured under load here. */
export function loopback(gossip: GossipSpec = { mode: 'all' }): NetworkSpec {
  return {
    kind: 'lan',
    nearMs: { kind: 'uniform', min: 0.15, max: 0.3 },
    farMs: { kind: 'uniform', min: 0.15, max: 0.3 },
    jitter: 0.5,
    uplinkMBps: 100,
    gossip,
  }
}

/** Three regions: 0.2-2 ms inside one, 20-120 ms across (one way). */
export function regions(gossip: GossipSpec = { mode: 'all' }): NetworkSpec {
  return {
    kind: 'regions',
    regions: 3,
    nearMs: { kind: 'uniform', min: 0.2, max: 2 },
    farMs: { kind: 'uniform', min: 20, max: 120 },
    jitter: 0.1,
    uplinkMBps: 12.5,
    gossip,
  }
}

export function lan(gossip: GossipSpec = { mode: 'all' }): NetworkSpec {
  return {
    kind: 'lan',
    nearMs: { kind: 'uniform', min: 0.1, max: 0.5 },
    farMs: { kind: 'uniform', min: 0.1, max: 0.5 },
    jitter: 0.2,
    uplinkMBps: 125,
    gossip,
  }
}

export function wan(gossip: GossipSpec = { mode: 'all' }): NetworkSpec {
  return {
    kind: 'wan',
    nearMs: { kind: 'uniform', min: 5, max: 150 },
    farMs: { kind: 'uniform', min: 5, max: 150 },
    jitter: 0.1,
    uplinkMBps: 12.5,
    gossip,
  }
}

/**
 * Gossip: every node hears every advert up to 1,000 nodes (the design; its
 * cost grows as N²), beyond that a 32-peer neighbourhood plus owners' adverts to all.
 */
export function gossipFor(nodes: number): GossipSpec {
  return nodes <= 1000 ? { mode: 'all' } : { mode: 'neighbourhood', peers: 32, ownersToAll: true }
}

/** Pareto(1.5) task sizes from 100 ms, truncated at 5 s (mean about 280 ms). */
export const HEAVY_TAILED: Dist = { kind: 'pareto', alpha: 1.5, min: 100, max: 5000 }
export const UNIFORM_COST: Dist = { kind: 'uniform', min: 200, max: 400 }

export function cpuJob(name: string, tasks: number, costMs: Dist, more: Partial<JobPlan> = {}): JobPlan {
  return {
    name,
    count: 1,
    owner: 0,
    submitAtMs: { kind: 'fixed', value: 1000 },
    tasks,
    costMs,
    resources: { cpu: 1, gpu: 0, memoryMB: 256 },
    inputBytes: 128,
    resultBytes: 256,
    maxAttempts: 5,
    retries: 0,
    ...more,
  }
}
