/**
 * A holder's results for remote owners, kept until acked. Results produced
 * in one handle() call go out coalesced, one send-results per owner; the
 * unacked ones are resent after resultResendMs, and all at once when their
 * owner (re)connects. One entry per (job, index): a newer attempt's result
 * supersedes an older one still unacked.
 */
import { getOrCreate } from './collections.ts'
import { copyOf } from './credentials.ts'
import type { Runtime } from './runtime.ts'
import type { HeldKey, JobId, JobSpec, PeerKey, TaskKey, TaskResult } from './types.ts'

export interface OutboxJob {
  readonly spec: JobSpec
  /** Results of this job in the outbox. */
  unacked: number
}

interface Entry {
  readonly job: OutboxJob
  readonly result: TaskResult
  sentAt: number
}

function keyOf(job: JobId, index: number): string {
  return `${job}\n${index}`
}

export class Outbox {
  private readonly rt: Runtime
  /** Called when a job's last unacked result leaves. */
  private readonly settled: (job: OutboxJob) => void
  /** Owner → entries, in order of last send. */
  private readonly boxes = new Map<PeerKey, Map<string, Entry>>()
  /** Results produced in this handle() call. */
  private readonly pending = new Map<PeerKey, TaskResult[]>()
  /** Bytes of the results kept per owner (values and error texts), until acked. */
  private readonly bytes = new Map<PeerKey, number>()
  /** ...and for all owners together. */
  keptBytes = 0

  constructor(rt: Runtime, settled: (job: OutboxJob) => void) {
    this.rt = rt
    this.settled = settled
  }

  /** Bytes of results kept for `owner` until it acks them. */
  bytesFor(owner: PeerKey): number {
    return this.bytes.get(owner) ?? 0
  }

  private count(owner: PeerKey, r: TaskResult, sign: 1 | -1): void {
    const n = sign * resultBytes(r)
    this.keptBytes += n
    const left = (this.bytes.get(owner) ?? 0) + n
    if (left > 0) this.bytes.set(owner, left)
    else this.bytes.delete(owner)
  }

  /** Invariant check: the byte counts match the results kept. */
  bytesAddUp(): boolean {
    let all = 0
    for (const [owner, box] of this.boxes) {
      let n = 0
      for (const e of box.values()) n += resultBytes(e.result)
      if ((this.bytes.get(owner) ?? 0) !== n) return false
      all += n
    }
    return all === this.keptBytes && [...this.bytes.keys()].every((o) => this.boxes.has(o))
  }

  get size(): number {
    let n = 0
    for (const box of this.boxes.values()) n += box.size
    return n
  }

  add(job: OutboxJob, result: TaskResult): void {
    const owner = job.spec.owner
    const box = getOrCreate(this.boxes, owner, () => new Map<string, Entry>())
    const key = keyOf(result.job, result.index)
    const prev = box.get(key)
    if (prev !== undefined) {
      if (prev.result.attempt === result.attempt) return
      box.delete(key)
      this.count(owner, prev.result, -1)
      prev.job.unacked--
    }
    box.set(key, { job, result, sentAt: this.rt.now })
    this.count(owner, result, 1)
    job.unacked++
    getOrCreate(this.pending, owner, () => [] as TaskResult[]).push(result)
  }

  /**
   * Forgets one result (acked, or the owner said drop) if it is of that
   * attempt and, when `copy` is given (a drop), of that copy of it.
   */
  remove(owner: PeerKey, k: TaskKey, copy?: number): void {
    const box = this.boxes.get(owner)
    const key = keyOf(k.job, k.index)
    const e = box?.get(key)
    if (box === undefined || e === undefined || e.result.attempt !== k.attempt) return
    if (copy !== undefined && copyOf(e.result.custody) !== copy) return
    box.delete(key)
    this.count(owner, e.result, -1)
    if (box.size === 0) this.boxes.delete(owner)
    e.job.unacked--
    if (e.job.unacked === 0) this.settled(e.job)
  }

  /** Whether the result of this attempt of `k` is still owed to `owner` (sent or not, not yet acked or dropped). */
  owes(owner: PeerKey, k: TaskKey): boolean {
    return this.boxes.get(owner)?.get(keyOf(k.job, k.index))?.result.attempt === k.attempt
  }

  acked(from: PeerKey, tasks: TaskKey[]): void {
    for (const k of tasks) this.remove(from, k)
  }

  /** Forgets every result of a job (its owner cancelled it). */
  removeJob(job: OutboxJob): void {
    const box = this.boxes.get(job.spec.owner)
    if (box === undefined || job.unacked === 0) return
    for (const [k, e] of box) {
      if (e.job !== job) continue
      box.delete(k)
      this.count(job.spec.owner, e.result, -1)
    }
    if (box.size === 0) this.boxes.delete(job.spec.owner)
    job.unacked = 0
  }

  /** A send failed: keep the results; the resend timer sends them again. */
  sendFailed(to: PeerKey, tasks: TaskKey[]): void {
    const box = this.boxes.get(to)
    if (box === undefined) return
    for (const k of tasks) {
      const key = keyOf(k.job, k.index)
      const e = box.get(key)
      if (e === undefined) continue
      box.delete(key)
      e.sentAt = this.rt.now
      box.set(key, e)
    }
  }

  /** Emits the results produced in this handle() call, one command per owner. */
  flush(): void {
    for (const [owner, results] of this.pending) {
      this.rt.emit({ type: 'send-results', cause: this.rt.cause, to: owner, results })
    }
    this.pending.clear()
  }

  /** Resends results whose last send is older than resultResendMs (all of them if `all`). */
  resend(owner: PeerKey, all: boolean): void {
    const box = this.boxes.get(owner)
    if (box === undefined) return
    const due: Entry[] = []
    const limit = this.rt.now - this.rt.s.resultResendMs
    for (const e of box.values()) {
      if (!all && e.sentAt > limit) break
      due.push(e)
    }
    for (const e of due) {
      const key = keyOf(e.result.job, e.result.index)
      box.delete(key)
      e.sentAt = this.rt.now
      box.set(key, e)
    }
    for (let i = 0; i < due.length; i += this.rt.s.maxBatch) {
      const results = due.slice(i, i + this.rt.s.maxBatch).map((e) => e.result)
      this.rt.emit({ type: 'send-results', cause: this.rt.cause, to: owner, results })
    }
  }

  resendDue(): void {
    const limit = this.rt.now - this.rt.s.resultResendMs
    for (const [owner, box] of this.boxes) {
      const first = box.values().next()
      if (!first.done && first.value.sentAt <= limit) this.resend(owner, false)
    }
  }

  /** The results an owner is owed, as lease holdings (custody until acked), with their credentials. */
  keys(owner: PeerKey): HeldKey[] {
    const out: HeldKey[] = []
    for (const e of this.boxes.get(owner)?.values() ?? []) {
      const { job, index, attempt, custody } = e.result
      const copy = copyOf(custody)
      out.push(custody === undefined ? { job, index, attempt, copy } : { job, index, attempt, copy, custody })
    }
    return out
  }

  nextDeadline(): number | undefined {
    let at: number | undefined
    for (const box of this.boxes.values()) {
      const first = box.values().next()
      if (first.done) continue
      const due = first.value.sentAt + this.rt.s.resultResendMs
      if (at === undefined || due < at) at = due
    }
    return at
  }
}

/** What a kept result holds in memory: its value, or its error text and stack. */
function resultBytes(r: TaskResult): number {
  const o = r.outcome
  if (o.status === 'ok') return o.value.byteLength
  return o.error.length + ('stack' in o ? (o.stack?.length ?? 0) : 0)
}
