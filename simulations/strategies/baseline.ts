/**
 * What the two baselines share: reliable messages over the network model
 * (a lost message, or one to a peer cut off by a partition, is sent again
 * after lossDetectMs, as a transport with retries would; one to a dead peer
 * is dropped), the owner's side of a job (results accepted once, dependents
 * released when their dependencies are done, job completion), and the
 * per-task state table the checkers read: where each task is and who holds it.
 */
import { FIRST_STRATEGY_KIND, type Run, type Sim, type Strategy, type StrategyName } from '../core/sim.ts'
import type { SimJob } from '../model/workload.ts'

const K_ARRIVE = FIRST_STRATEGY_KIND
const K_RETRY = FIRST_STRATEGY_KIND + 1
/** Baselines number their own timers from here. */
export const FIRST_BASELINE_KIND = FIRST_STRATEGY_KIND + 2

export interface Packet {
  readonly from: number
  readonly fromInc: number
  readonly to: number
  /** Receiver incarnation at send time: a packet for an earlier life is dropped. */
  readonly toInc: number
  readonly type: number
  readonly bytes: number
  readonly what: number
  readonly gids: number[]
  readonly extra: number
  /** A run's duration, for results. */
  readonly x: number
  /** A connection or session number, where the protocol has one. */
  readonly tag: number
}

/** Task states in the baselines' tables. */
export const WAITING = 0
export const QUEUED = 1
export const HELD = 2
export const DONE = 3

export abstract class Baseline implements Strategy {
  abstract readonly name: StrategyName
  readonly settleMs = 1000
  protected readonly sim: Sim
  /** Where each task is (WAITING / QUEUED / HELD / DONE) and its holder while HELD. */
  readonly state: Uint8Array
  readonly holder: Int32Array
  protected readonly depsLeft: Int32Array
  /** Tasks of each job not yet done. */
  private readonly open: Int32Array
  private readonly lossDetectMs: number
  resent = 0

  constructor(sim: Sim) {
    this.sim = sim
    this.state = new Uint8Array(sim.work.total)
    this.holder = new Int32Array(sim.work.total).fill(-1)
    this.depsLeft = Int32Array.from(sim.work.depCount)
    this.open = Int32Array.from(sim.work.jobs.map((j) => j.size))
    this.lossDetectMs = sim.spec.faults.lossDetectMs
  }

  abstract start(): void
  abstract submit(job: SimJob): void
  abstract runDone(run: Run): void
  abstract crashed(node: number, detectMs: number): void
  abstract recovered(node: number): void
  abstract joined(node: number): void
  abstract cut(nodes: number[], detectMs: number): void
  abstract healed(nodes: number[]): void
  abstract leftovers(): string[]
  abstract stats(): Record<string, number>
  protected abstract arrive(p: Packet): void
  protected abstract timer(kind: number, a: number, b: number, obj: unknown): void
  protected abstract checkTables(): void

  send(
    from: number,
    to: number,
    type: number,
    bytes: number,
    what: number,
    gids: number[],
    extra = 0,
    x = 0,
    tag = 0,
  ): void {
    const sim = this.sim
    const p: Packet = {
      from,
      fromInc: sim.inc[from],
      to,
      toInc: sim.inc[to],
      type,
      bytes,
      what,
      gids,
      extra,
      x,
      tag,
    }
    this.transmit(p)
  }

  private transmit(p: Packet): void {
    const sim = this.sim
    if (sim.alive[p.to] === 0 || sim.inc[p.to] !== p.toInc) return
    if (sim.alive[p.from] === 0 || sim.inc[p.from] !== p.fromInc) return
    if (p.from === p.to) {
      sim.schedule(sim.now, K_ARRIVE, p.to, p.toInc, 0, p)
      return
    }
    sim.metrics.message(p.type, p.bytes)
    if (!sim.net.reachable(p.from, p.to) || sim.net.lost(sim.rng)) {
      sim.schedule(sim.now + this.lossDetectMs, K_RETRY, p.from, p.fromInc, 0, p)
      return
    }
    sim.schedule(sim.net.arrival(sim.now, p.from, p.to, p.bytes, sim.rng), K_ARRIVE, p.to, p.toInc, 0, p)
  }

  fire(kind: number, a: number, b: number, _x: number, obj: unknown): void {
    const sim = this.sim
    if (kind === K_ARRIVE) {
      const p = obj as Packet
      if (sim.alive[a] === 0 || sim.inc[a] !== b) return
      if (!sim.net.reachable(p.from, p.to)) {
        sim.schedule(sim.now + this.lossDetectMs, K_RETRY, p.from, p.fromInc, 0, p)
        return
      }
      this.arrive(p)
      return
    }
    if (kind === K_RETRY) {
      if (sim.alive[a] === 0 || sim.inc[a] !== b) return
      this.resent++
      this.transmit(obj as Packet)
      return
    }
    this.timer(kind, a, b, obj)
  }

  /** The owner has a final result for `gid`: the first one counts; returns newly ready tasks. */
  protected ownerAccepts(gid: number, durationMs: number): number[] {
    const sim = this.sim
    if (this.state[gid] === DONE) {
      sim.metrics.duplicateResults++
      return []
    }
    this.state[gid] = DONE
    this.holder[gid] = -1
    const job = sim.work.jobs[sim.work.jobOf[gid]]
    sim.accept(gid, true, durationMs, job.slotCost)
    const ready: number[] = []
    const w = sim.work
    for (let k = w.depOffsets[gid]; k < w.depOffsets[gid + 1]; k++) {
      const d = w.depTargets[k]
      if (--this.depsLeft[d] === 0) ready.push(d)
    }
    if (--this.open[job.number] === 0) sim.jobFinished(job.number, 'done')
    return ready
  }

  /** Tasks of `job` ready at submit. */
  protected roots(job: SimJob): number[] {
    const out: number[] = []
    for (const t of job.inputs) if (t.deps.length === 0) out.push(job.base + t.index)
    return out
  }

  checkAll(): void {
    const sim = this.sim
    for (let g = 0; g < this.state.length; g++) {
      const st = this.state[g]
      if ((st === DONE) !== (sim.metrics.accepted[g] === 1))
        sim.violation(`task ${sim.taskName(g)}: table says ${st}, accepted ${sim.metrics.accepted[g]}`)
      if ((st === HELD) !== this.holder[g] >= 0)
        sim.violation(`task ${sim.taskName(g)}: holder ${this.holder[g]} in state ${st}`)
    }
    this.checkTables()
  }
}
