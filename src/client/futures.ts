/**
 * Futures and task graphs that live on the mesh. `grid.submit()` returns a
 * Future at once, with its job id; a Future passed among the arguments of
 * another submit becomes a dependency that the owner daemon resolves (the
 * daemon stores the dependent job and schedules it once the task it waits for
 * has ended), so the caller may exit once `future.submitted` resolved and the
 * whole graph still runs, its results readable with `gridnode results <id>`.
 * `grid.graph()` collects tasks with `add()` and submits them with `run()`.
 *
 * Per dependency, a failure rule: a Future as is fails its dependent when it
 * fails ("dependency 0 (task 0 of job …) failed: …"); `orError(future)` runs
 * the dependent anyway with an Error in that argument (the same message).
 */
import { newJobId } from '../domain/job-id.ts'
import type { WorkSpec } from '../domain/types.ts'
import { decodeValue, encodeValue, encodeWith } from '../domain/values.ts'
import type { DaemonClient } from './daemon-client.ts'
import { JobCancelledError, NoSuchJobError, TaskError } from './errors.ts'
import type { TaskOptions } from './grid.ts'
import { Job, type WireResult } from './job.ts'

/** A dependency whose failure its dependent receives as an Error argument instead of failing too. */
export class OrError<R = unknown> {
  readonly future: Future<R>
  constructor(future: Future<R>) {
    this.future = future
  }
}

/**
 * Passes `future` to a dependent task so that, when it fails (or its job is cancelled), the
 * dependent still runs, with an Error in that argument whose message says which dependency
 * failed and why ("dependency 0 (task 0 of job …) failed: …").
 */
export function orError<R>(future: Future<R>): OrError<R> {
  return new OrError(future)
}

interface FutureState {
  /** Another task depends on it, or it belongs to a graph: submit without waiting for the end. */
  detached: boolean
  /** cancel() came before the job was submitted: never submit it. */
  cancelled: boolean
  /** The submit request went out. */
  sent: boolean
}

/** A single task's eventual value; pass it to another submit() to make that task depend on it. */
export class Future<R = unknown> implements PromiseLike<R> {
  /** The id of the job behind it (one task), known at once: `gridnode job <id>`, `gridnode results <id>`. */
  readonly id: string
  /** The task's index in its job (0). */
  readonly index: number
  /**
   * Resolves with the id once the owner daemon has the job; from then on it runs to its end
   * whatever the caller does (even exits). Rejects if it could not be submitted.
   */
  readonly submitted: Promise<string>
  /** Made on the first then(): a future nobody awaits opens no event stream (the caller may exit). */
  private value: Promise<R> | undefined
  private readonly makeValue: () => Promise<R>
  private readonly client: DaemonClient
  /** @internal */
  readonly state: FutureState

  /** @internal Made by grid.submit() and graph.add(). */
  constructor(
    client: DaemonClient,
    id: string,
    state: FutureState,
    submitted: Promise<string>,
    value: () => Promise<R>,
  ) {
    this.client = client
    this.id = id
    this.index = 0
    this.state = state
    this.submitted = submitted
    this.makeValue = value
    this.submitted.catch(() => {})
  }

  // biome-ignore lint/suspicious/noThenProperty: a Future is awaitable on purpose
  then<A = R, B = never>(
    onOk?: ((v: R) => A | PromiseLike<A>) | null,
    onErr?: ((e: unknown) => B | PromiseLike<B>) | null,
  ) {
    this.value ??= this.makeValue()
    return this.value.then(onOk, onErr)
  }

  /**
   * Cancels the task: before it was submitted, it never is; queued or running, it is stopped on
   * every node. Its value then rejects with JobCancelledError, and dependents that wait for it
   * fail (or, through orError, get the error).
   */
  async cancel(): Promise<void> {
    this.state.cancelled = true
    if (!this.state.sent) return
    const path = `/v1/jobs/${encodeURIComponent(this.id)}/cancel`
    // Sent: the daemon may still be reading the submit. It knows the id within moments.
    for (let i = 0; ; i++) {
      try {
        await this.client.request('POST', path)
        return
      } catch (err) {
        if (!(err instanceof NoSuchJobError) || i >= 40) throw err
        await new Promise((r) => setTimeout(r, 25))
      }
    }
  }
}

export interface SubmitParts {
  client: DaemonClient
  /** The bundle's blob hash (module bundled and stored, export checked). */
  bundle: () => Promise<string>
  exportName: string
  args: unknown[]
  options: TaskOptions
  /** Graphs: nothing is submitted before this resolves (run()). */
  gate?: Promise<void>
  /** Submit without waiting for the end (graphs). */
  detached?: boolean
}

/** One task as a job of its own, with its futures among the arguments as owner-side dependencies. */
export function submitTask<R>(p: SubmitParts): Future<R> {
  const id = newJobId() // chosen here, so a future's id is known before the daemon answers
  const state: FutureState = { detached: p.detached === true, cancelled: false, sent: false }
  const after: Array<{ job: string; index: number; onFailure: 'fail' | 'pass' }> = []
  const upstream: Future[] = []
  const args = p.args.map((a) => {
    const dep = a instanceof OrError ? a.future : a instanceof Future ? a : undefined
    if (dep === undefined) return a
    dep.state.detached = true
    if (!upstream.includes(dep)) upstream.push(dep)
    after.push({ job: dep.id, index: dep.index, onFailure: a instanceof OrError ? 'pass' : 'fail' })
    return { $gridnodeAfter: after.length - 1 }
  })
  const submittedAt = Promise.withResolvers<string>()
  const outcome = (async (): Promise<{ waited?: { status: string; results: WireResult[] } }> => {
    try {
      await p.gate
      const bundle = await p.bundle()
      // The daemon must know each job this one waits for before it is told about this one.
      await Promise.all(upstream.map((f) => f.submitted))
      if (state.cancelled) throw new JobCancelledError(id)
      const o = p.options
      const body = encodeWith(
        {
          id,
          name: o.name ?? p.exportName,
          work: { kind: 'function', bundle, exportName: p.exportName, call: 'apply' } satisfies WorkSpec,
          resources: { cpu: o.cpu ?? 1, gpu: o.gpu ?? 0, memoryMB: o.memoryMB ?? 0 },
          timeoutMs: o.timeoutMs ?? 0,
          retries: o.retries ?? 0,
          maxAttempts: o.maxAttempts ?? 3,
          ...(after.length > 0 ? { after } : {}),
        },
        'tasks',
        [{ input: encodeValue(args, 'arguments') }],
      )
      state.sent = true
      if (after.length === 0 && !state.detached) {
        // Nothing waits for it: submit and wait in one request (the fast path for single tasks).
        const request = p.client.request<{ status: string; results: WireResult[] }>(
          'POST',
          '/v1/jobs?wait=1',
          body,
        )
        // The daemon has it once the request is read; a later dependent still waits for its answer.
        const waited = await request
        submittedAt.resolve(id)
        return { waited }
      }
      await p.client.request('POST', '/v1/jobs', body)
      submittedAt.resolve(id)
      return {}
    } catch (err) {
      submittedAt.reject(err)
      throw err
    }
  })()
  outcome.catch(() => {})
  const value = () =>
    outcome.then(async ({ waited }): Promise<R> => {
      if (waited !== undefined) return decodeOne<R>(id, waited.status, waited.results[0])
      return follow<R>(p.client, id)
    })
  return new Future<R>(p.client, id, state, submittedAt.promise, value)
}

/** The value of task 0 of a job, from the daemon's event stream (stored results first). */
async function follow<R>(client: DaemonClient, id: string): Promise<R> {
  const job = new Job<R>(client, Promise.resolve(id))
  let first: Awaited<ReturnType<typeof job.results>> | undefined
  let error: TaskError | undefined
  let got = false
  for await (const r of job) {
    if (r.index !== 0) continue
    got = true
    if (r.error) error = r.error
    else first = [r.value]
  }
  const status = await job.done()
  if (error !== undefined) throw error
  if (!got || status === 'cancelled') throw new JobCancelledError(id)
  return (first as R[])[0]
}

function decodeOne<R>(id: string, status: string, r: WireResult | undefined): R {
  if (status === 'cancelled') throw new JobCancelledError(id)
  if (!r?.ok) throw new TaskError(0, r?.error ?? 'failed', r?.stack ?? undefined)
  return (r.value ? decodeValue(Buffer.from(r.value, 'base64')) : undefined) as R
}

/**
 * Tasks added to a graph are submitted together by run(): each is a job of its own, and a
 * handle (the Future add() returns) among the arguments of a later add() is a dependency the
 * owner resolves. After run() resolved, the caller may exit and the graph still runs to its end.
 */
export class Graph {
  private readonly gate = Promise.withResolvers<void>()
  private readonly tasks: Future[] = []
  private readonly submit: (
    module: URL | string,
    exportName: string,
    args: unknown[],
    options: TaskOptions,
    gate: Promise<void>,
  ) => Future
  private started = false

  /** @internal Made by grid.graph(). */
  constructor(
    submit: (
      module: URL | string,
      exportName: string,
      args: unknown[],
      options: TaskOptions,
      gate: Promise<void>,
    ) => Future,
  ) {
    this.submit = submit
  }

  /**
   * Adds one call of `module`'s export with `args`; handles of earlier tasks among the args
   * are dependencies (wrap one in orError() to receive its failure instead of failing too).
   */
  add<R = unknown>(
    module: URL | string,
    exportName: string,
    args: unknown[] = [],
    options: TaskOptions = {},
  ): Future<R> {
    if (this.started) throw new Error('graph.add() after run(): make a new graph')
    for (const a of args) {
      const dep = a instanceof OrError ? a.future : a
      if (dep instanceof Future && !this.tasks.includes(dep) && !dep.state.detached) dep.state.detached = true
    }
    const f = this.submit(module, exportName, args, options, this.gate.promise) as Future<R>
    this.tasks.push(f)
    return f
  }

  /** Submits every task; resolves with their handles (in add order) once the daemon has them all. */
  async run(): Promise<Future[]> {
    this.started = true
    this.gate.resolve()
    await Promise.all(this.tasks.map((f) => f.submitted))
    return [...this.tasks]
  }

  /** Cancels every task of the graph (those not submitted yet never are). */
  async cancel(): Promise<void> {
    await Promise.all(
      this.tasks.map((f) =>
        f.cancel().catch((e) => (e instanceof NoSuchJobError ? undefined : Promise.reject(e))),
      ),
    )
  }
}
