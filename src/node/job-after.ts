/**
 * Jobs that wait for tasks of other jobs owned here (futures passed to
 * `grid.submit`, the tasks of `grid.graph()`): the owner resolves the
 * dependency, not the caller, so the caller may exit right after submitting.
 *
 * A waiting job is stored at once (it is listed, `gridnode job` and `results`
 * know it, a restart resumes it) and handed to the scheduler once every task
 * it waits for has ended. Each `{ $gridnodeAfter: k }` among a task's
 * arguments (call 'apply') is then replaced by the value of `after[k]`; an
 * input that grows past 1 MiB so travels as a blob reference. When
 * that task failed (or its job was cancelled): with `onFailure: 'fail'` the
 * waiting job fails without running, saying which dependency failed; with
 * `onFailure: 'pass'` it runs with an Error in that argument, whose message says
 * which dependency failed and why.
 */
import type { JobId, JobSpec, TaskResult } from '../domain/types.ts'
import { decodeValue, encodeValue } from '../domain/values.ts'
import type { Driver, SubmitRequest } from './driver.ts'
import { INLINE_VALUE_BYTES } from './files/big-values.ts'
import type { JobRecord, StoredResult } from './store.ts'

/** One task of another job that a job waits for. */
export interface AfterRef {
  job: JobId
  index: number
  /** 'fail' (default): a failed dependency fails the waiting job. 'pass': it runs with the error as the argument. */
  onFailure: 'fail' | 'pass'
}

/** What the stored spec of a waiting job carries besides the JobSpec (never sent to the scheduler). */
interface StoredAfter {
  after?: AfterRef[]
}

export const MAX_AFTER = 1000

interface Parked {
  req: SubmitRequest
  after: AfterRef[]
  unsubscribe: Array<() => void>
}

export class JobAfter {
  private readonly driver: Driver
  private readonly self: string
  private readonly parked = new Map<JobId, Parked>()

  constructor(driver: Driver, self: string) {
    this.driver = driver
    this.self = self
  }

  /** Jobs waiting for others right now. */
  get waiting(): number {
    return this.parked.size
  }

  isWaiting(id: JobId): boolean {
    return this.parked.has(id)
  }

  /** What a waiting job waits for, or undefined. */
  waitsFor(id: JobId): AfterRef[] | undefined {
    return this.parked.get(id)?.after
  }

  /** Stores a job that waits for `after` and schedules it once they ended. */
  submit(req: SubmitRequest, id: JobId, after: AfterRef[]): { id: JobId; total: number } {
    const store = this.driver.hub.store
    const spec: JobSpec & StoredAfter = {
      id,
      owner: this.self,
      work: req.work,
      resources: req.resources,
      timeoutMs: req.timeoutMs,
      maxAttempts: req.maxAttempts,
      retries: req.retries,
      after,
    }
    store.createJob(spec, req.name, req.tasks, Date.now())
    this.park(id, req, after)
    return { id, total: req.tasks.length }
  }

  /** After a restart: a stored job that waited for others waits again (true), or it is not one of ours. */
  resume(record: JobRecord): boolean {
    const after = (record.spec as JobSpec & StoredAfter).after
    if (after === undefined || after.length === 0) return false
    if (this.driver.hub.store.results(record.id, 0, 1).length > 0) return false
    const { after: _, owner: __, id: ___, ...rest } = record.spec as JobSpec & StoredAfter
    const req: SubmitRequest = { ...rest, name: record.name, tasks: this.driver.hub.store.tasks(record.id) }
    this.park(record.id, req, after)
    return true
  }

  /** Cancels a waiting job (true), or says it is not waiting. */
  cancel(id: JobId): boolean {
    const p = this.parked.get(id)
    if (p === undefined) return false
    this.unpark(id, p)
    this.driver.hub.finish(id, 'cancelled', this.progress(id, p.req.tasks.length, 0))
    return true
  }

  private park(id: JobId, req: SubmitRequest, after: AfterRef[]): void {
    const p: Parked = { req, after, unsubscribe: [] }
    this.parked.set(id, p)
    const hub = this.driver.hub
    for (const up of new Set(after.map((a) => a.job))) {
      if (hub.store.job(up)?.status !== 'running') continue
      p.unsubscribe.push(
        hub.subscribe(up, (e) => {
          if (e.type === 'finished') queueMicrotask(() => this.check(id))
        }),
      )
    }
    this.check(id)
  }

  private unpark(id: JobId, p: Parked): void {
    this.parked.delete(id)
    for (const u of p.unsubscribe) u()
  }

  /** Once every job waited for has ended: schedule this one, or fail it. */
  private check(id: JobId): void {
    const p = this.parked.get(id)
    if (p === undefined) return
    const store = this.driver.hub.store
    for (const a of p.after) {
      const status = store.job(a.job)?.status
      if (status === 'running') return
    }
    this.unpark(id, p)
    const values: unknown[] = []
    for (const [k, a] of p.after.entries()) {
      const r: StoredResult | undefined = store.results(a.job, a.index, 1).find((x) => x.index === a.index)
      if (r?.ok) {
        values.push(r.value ? decodeValue(r.value) : undefined)
        continue
      }
      const why =
        r === undefined ? 'did not run (its job was cancelled or pruned)' : `failed: ${r.error ?? 'failed'}`
      const message = `dependency ${k} (task ${a.index} of job ${a.job}) ${why}`
      if (a.onFailure === 'pass') {
        values.push(new Error(message))
        continue
      }
      return this.fail(id, p.req, message)
    }
    let tasks: SubmitRequest['tasks']
    try {
      tasks = p.req.tasks.map((t) => ({ ...t, input: substitute(t.input, values) }))
    } catch (err) {
      return this.fail(id, p.req, `cannot pass the dependencies' values: ${(err as Error).message}`)
    }
    void this.launch(id, p.req, tasks)
  }

  /** Schedules a job whose inputs now hold its dependencies' values; those over 1 MiB travel as blobs. */
  private async launch(id: JobId, req: SubmitRequest, tasks: SubmitRequest['tasks']): Promise<void> {
    try {
      if (tasks.some((t) => t.input.byteLength > INLINE_VALUE_BYTES)) await this.driver.bigInputs(tasks)
      this.driver.submit({ ...req, tasks }, { id, stored: true })
    } catch (err) {
      this.fail(id, req, `cannot pass the dependencies' values: ${(err as Error).message}`)
    }
  }

  /** Every task of a waiting job fails without running, saying why. */
  private fail(id: JobId, req: SubmitRequest, message: string): void {
    const results: TaskResult[] = req.tasks.map((t) => ({
      job: id,
      index: t.index,
      attempt: 0,
      ranOn: this.self,
      outcome: { status: 'rejected', error: message, durationMs: 0 },
    }))
    const hub = this.driver.hub
    void hub.persist(results).catch(() => {})
    hub.finish(id, 'failed', { ...this.progress(id, req.tasks.length, 0), failed: req.tasks.length })
  }

  private progress(job: JobId, total: number, done: number) {
    return { job, total, done, failed: 0, running: 0, nodes: 0 }
  }
}

/** Replaces each `{ $gridnodeAfter: k }` argument of an encoded argument list by `values[k]`. */
export function substitute(input: Uint8Array, values: unknown[]): Uint8Array {
  const args = decodeValue(input)
  if (!Array.isArray(args)) return input
  let changed = false
  const out = args.map((a) => {
    const k = afterIndexOf(a)
    if (k === undefined) return a
    changed = true
    if (!Number.isInteger(k) || k < 0 || k >= values.length)
      throw new Error(`argument refers to dependency ${k}`)
    return values[k]
  })
  return changed ? encodeValue(out, 'arguments') : input
}

function afterIndexOf(arg: unknown): number | undefined {
  if (typeof arg !== 'object' || arg === null || Array.isArray(arg)) return undefined
  const keys = Object.keys(arg)
  if (keys.length !== 1 || keys[0] !== '$gridnodeAfter') return undefined
  const k = (arg as { $gridnodeAfter: unknown }).$gridnodeAfter
  return typeof k === 'number' ? k : Number.NaN
}
