/**
 * What a scenario file declares: the mesh (node classes), the network, the
 * faults, the jobs and the run's budgets. Scenario files live in
 * simulations/scenarios/ and export `scenario` built with defineScenario();
 * build() receives the node count and seed from the command line so one
 * file describes a family of runs (10 to 10,000 nodes).
 *
 * Units are in the names: ms of virtual time, MB/s, bytes. Fault times given
 * as `…Lb` are fractions of the run's lower bound on makespan (known before
 * the run, since the workload is drawn first), so "crash 10% of nodes during
 * the job" scales with the job.
 */
import type { SchedulerOptions } from '../src/scheduler/index.ts'

/** A value drawn per item. */
export type Dist =
  | { kind: 'fixed'; value: number }
  | { kind: 'uniform'; min: number; max: number }
  | { kind: 'exp'; mean: number }
  | { kind: 'lognormal'; median: number; sigma: number; min?: number; max?: number }
  /** Pareto(alpha) from `min`, truncated at `max` (Infinity: not truncated). */
  | { kind: 'pareto'; alpha: number; min: number; max: number }
  | { kind: 'choice'; values: number[]; weights?: number[] }

export interface NodeClass {
  /** Share of the mesh with this class (relative weight). */
  weight: number
  /** CPU slots (rounded, at least 1). */
  slots: Dist
  /** CPU speed factor: a task of cost c ms runs c / speed ms here. */
  speed: Dist
  memoryMB: number
  /** Whole GPUs. */
  gpus: number
  /** GPU speed factor for GPU tasks (default: 1). */
  gpuSpeed?: Dist
}

export type GossipSpec =
  /** Every node hears every advert (the design's gossipsub topic; exact, O(N²) deliveries). */
  | { mode: 'all' }
  /**
   * Each node hears the adverts of about `peers` random neighbours (symmetric links);
   * with ownersToAll, the adverts of nodes that own jobs also reach every node.
   */
  | { mode: 'neighbourhood'; peers: number; ownersToAll?: boolean }

export interface NetworkSpec {
  /** lan: one site; wan: every link far; regions: `regions` sites, near inside, far across. */
  kind: 'lan' | 'wan' | 'regions'
  regions?: number
  /** One-way base latency of a near link, drawn once per pair (ms). */
  nearMs: Dist
  /** One-way base latency of a far link (ms). */
  farMs: Dist
  /** Per-message extra delay: exponential with mean jitter × the link's base. */
  jitter: number
  /** Each node's uplink (MB/s); 0 = unlimited. Messages queue behind each other on it. */
  uplinkMBps: number
  gossip: GossipSpec
}

export interface CrashPlan {
  /** Share of the nodes that crash (kill -9), excluding owners unless includeOwners. */
  fraction: number
  /** Crash times, uniform in this window (fractions of the lower bound). */
  windowLb: [number, number]
  /** Peers learn of a crash this long after it (connection drop or missed pings). */
  detectMs: Dist
  /** Crashed nodes restart after this long; omitted: they stay down until the liveness phase. */
  recoverAfterMs?: Dist
  /** Down nodes restart when the liveness phase begins (default true). */
  recoverForLiveness?: boolean
  includeOwners?: boolean
}

export interface JoinPlan {
  count: number
  windowLb: [number, number]
  /** Index into nodeClasses (default: drawn like the others). */
  nodeClass?: number
}

export interface LeavePlan {
  fraction: number
  windowLb: [number, number]
}

export interface PartitionPlan {
  atLb: number
  healAfterMs: number
  /** Share of the nodes cut off from the rest (owners stay on the majority side). */
  fraction: number
  /** Each side sees the other's nodes gone this long after the cut. */
  detectMs: number
}

export interface FaultSpec {
  /** Message loss rate during the safety phase. */
  loss: number
  /** A lost request's sender hears of it this long after sending (stream reset or timeout). */
  lossDetectMs: number
  crashes?: CrashPlan
  joins?: JoinPlan
  leaves?: LeavePlan
  partitions?: PartitionPlan[]
  /** End of the safety phase (fraction of the lower bound); default: just after the last fault. */
  untilLb?: number
}

export type GraphSpec =
  | { kind: 'independent' }
  /** `layers` equal layers; each task depends on `fanIn` random tasks of the layer before. */
  | { kind: 'layers'; layers: number; fanIn: number }
  /** Each task depends on up to `maxDeps` earlier tasks with probability `p`. */
  | { kind: 'random'; p: number; maxDeps: number }

export interface JobPlan {
  name: string
  /** How many jobs of this kind. */
  count: number
  /** Owner node: an index, or 'spread' (job k goes to node k × N / count). */
  owner: number | 'spread'
  /** Submit times (ms), drawn per job. */
  submitAtMs: Dist
  tasks: number
  /** Task cost at speed 1 (ms). */
  costMs: Dist
  /** Given costs (ms) in task order, used instead of drawing from costMs (a benchmark's list). */
  costsMs?: readonly number[]
  resources: { cpu: number; gpu: number; memoryMB: number }
  graph?: GraphSpec
  inputBytes: number
  resultBytes: number
  maxAttempts: number
  retries: number
  /** Chance that a run crashes its worker (an infrastructure failure; retried up to maxAttempts). */
  crashRate?: number
  /**
   * Task order in the job: as drawn (default), or largest cost first, which shows what a
   * scheduler ordering its queues by the cost hints would do (independent tasks only).
   */
  order?: 'drawn' | 'largest-first'
}

export interface BrokerSpec {
  /** The central queue's service time per message it handles (ms). */
  serviceMs: number
}

/** Scheduler options passed to every NodeScheduler (its defaults otherwise). */
export type SchedulerTiming = Partial<Omit<SchedulerOptions, 'self' | 'capacity' | 'seed'>>

export interface ScenarioSpec {
  nodes: number
  nodeClasses: NodeClass[]
  network: NetworkSpec
  faults: FaultSpec
  jobs: JobPlan[]
  scheduler?: SchedulerTiming
  broker?: BrokerSpec
  /** Invariant checks: 'full' after every step, 'sampled' each node at most once per checkIntervalMs. */
  check?: 'full' | 'sampled'
  checkIntervalMs?: number
  /** Step budget for the whole run; the liveness phase must converge within it. */
  stepBudget?: number
  /** Liveness time budget after the safety phase, as a multiple of the lower bound (plus 60 s). */
  livenessLb?: number
  /** Record every run for a Gantt chart (small runs only). */
  gantt?: boolean
}

export interface BuildParams {
  nodes: number
  seed: number
}

export interface Scenario {
  name: string
  description: string
  defaultNodes: number
  /** Strategies the scenario is meant for (default: all three). */
  strategies?: ReadonlyArray<'gridnode' | 'central' | 'random-push'>
  build(p: BuildParams): ScenarioSpec
}

export function defineScenario(s: Scenario): Scenario {
  return s
}
