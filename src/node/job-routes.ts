/**
 * The control API for jobs: upload bundles, submit, list, inspect, stream
 * events (server-sent events), read results and cancel. Everything is read
 * from the owner's store, so it works the same after a daemon restart.
 */
import type { JobSummary, WireResult } from '../domain/api.ts'
import { newJobId } from '../domain/job-id.ts'
import { MAX_COMMAND_OUTPUT_BYTES } from '../domain/types.ts'
import { GridnodeError } from '../errors.ts'
import { decodeValue } from '../executor/index.ts'
import { jobSpec as jobSpecCheck, MAX_DEPS, MAX_VALUE_BYTES } from '../protocol/schemas.ts'
import { STEAL_MAX_MESSAGE_BYTES, stealRequestCodec } from '../protocol/steal/codec.ts'
import type { JobProgress, JobSpec, Resources, TaskInput, WorkSpec } from '../scheduler/types.ts'
import { ApiError, type ApiRequest, type ApiServer, type HttpApiRequest, STREAMED } from './api.ts'
import type { Driver, SubmitRequest } from './driver.ts'
import { checkJobFiles, parseJobFiles } from './files/routes.ts'
import { type AfterRef, MAX_AFTER } from './job-after.ts'
import type { JobEvent } from './job-hub.ts'
import { JobExistsError, type JobRecord, type StoredResult } from './store.ts'

export const MAX_TASKS_PER_JOB = 1_000_000
export const MAX_JOB_NAME_LENGTH = 200
/** A well-formed peer ID standing in for the owner while the job's spec is checked against the wire schema. */
const SAMPLE_OWNER = '12D3KooWEGVRPZnhYFNYSjZHXpwyJVqonE9VFQneEtNsKBqYZ1of'
const MiB = 1024 * 1024

export function registerJobRoutes(api: ApiServer, driver: Driver): void {
  const hub = driver.hub
  api.route('POST', '/v1/blobs', async (req) => {
    if (!(req.body instanceof Uint8Array))
      throw bad('POST /v1/blobs takes the bytes as application/octet-stream')
    return { hash: await driver.blobs.put(req.body) }
  })
  api.route('POST', '/v1/jobs', async (req) => {
    const parsed = parseSubmit(req.body)
    await driver.bigInputs(parsed.tasks)
    const bodyBytes = (req.body as Uint8Array).byteLength
    const submitted = startJob(driver, checkJobFiles(driver.blobs, checkSubmit(parsed, bodyBytes)), parsed)
    return req.query.get('wait') === '1'
      ? waitForJob(driver, submitted.id, submitted.total, req.signal)
      : submitted
  })
  api.route('GET', '/v1/jobs', (req) => {
    const limit = clampInt(req.query.get('limit'), 100, 1, 1000)
    return hub.store.jobs(limit).map((j) => summary(j, driver))
  })
  api.route('POST', '/v1/jobs/prune', (req) => {
    const body = (req.body ?? {}) as { olderThanMs?: unknown }
    const ms = body.olderThanMs ?? driver.retentionMs()
    if (typeof ms !== 'number' || !Number.isFinite(ms) || ms < 0)
      throw bad('POST /v1/jobs/prune takes {"olderThanMs": <ms ≥ 0>} (default: the retention period)')
    const pruned = driver.pruneJobs(ms)
    return { olderThanMs: ms, pruned: pruned.length, ids: pruned }
  })
  api.route('GET', '/v1/jobs/:id', (req) => summary(record(req, driver), driver))
  api.route('POST', '/v1/jobs/:id/cancel', (req) => {
    const job = record(req, driver)
    if (job.status === 'running' && !driver.after.cancel(job.id)) driver.cancel(job.id)
    return { id: job.id, status: job.status === 'running' ? 'cancelled' : job.status }
  })
  api.route('GET', '/v1/jobs/:id/results', (req) => {
    const job = record(req, driver)
    const from = clampInt(req.query.get('from'), 0, 0, Number.MAX_SAFE_INTEGER)
    const limit = clampInt(req.query.get('limit'), 100_000, 1, 100_000)
    return hub.store.results(job.id, from, limit).map(resultJson)
  })
  api.httpRoute('GET', '/v1/jobs/:id/events', (req) => streamEvents(req, driver))
}

/** A whole number from a query parameter, within [min, max]; `fallback` when absent or not a number. */
function clampInt(text: string | null, fallback: number, min: number, max: number): number {
  const n = text === null ? Number.NaN : Math.trunc(Number(text))
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback
}

function record(req: ApiRequest, driver: Driver): JobRecord {
  const job = driver.hub.store.job(req.params.id)
  if (!job)
    throw new ApiError(
      404,
      'GN_NO_SUCH_JOB',
      `no job ${req.params.id} on this node (gridnode jobs lists them)`,
    )
  return job
}

function summary(j: JobRecord, driver: Driver): JobSummary {
  const live: JobProgress | undefined = j.status === 'running' ? driver.jobProgress(j.id) : undefined
  return {
    id: j.id,
    name: j.name,
    status: j.status,
    total: j.total,
    done: live?.done ?? j.done,
    failed: live?.failed ?? j.failed,
    running: live?.running ?? 0,
    nodes: live?.nodes ?? j.nodes,
    /** Backup copies of stragglers started (while this daemon knows the job: running or recently finished). */
    backups: (driver.jobProgress(j.id) as { backups?: number } | undefined)?.backups ?? 0,
    createdAt: j.createdAt,
    finishedAt: j.finishedAt,
    blocked: driver.hub.blockedReason(j.id),
    work: describeWork(j.spec.work),
    kind: j.spec.work.kind,
    resources: j.spec.resources,
  }
}

function describeWork(w: WorkSpec): string {
  if (w.kind === 'function') return `${w.exportName} from bundle ${w.bundle.slice(0, 12)}`
  if (w.kind === 'command') return w.argv.join(' ')
  return 'noop'
}

/** A result for JSON: the value as base64 of its encoding (the client decodes it). */
export function resultJson(r: StoredResult): WireResult {
  return {
    index: r.index,
    ok: r.ok,
    value: r.value ? Buffer.from(r.value).toString('base64') : null,
    error: r.error,
    stack: r.stack,
    ranOn: r.ranOn,
    durationMs: r.durationMs,
    ...(r.outputs ? { outputs: r.outputs } : {}),
  }
}

/**
 * `?wait=1`: answer once the job has finished, results included (one request per small job).
 * Subscribed right after the submit, before any task can end, so the results come from the
 * events, not from the store.
 */
function waitForJob(driver: Driver, id: string, total: number, signal: AbortSignal) {
  return new Promise((resolve, reject) => {
    const results: StoredResult[] = []
    const unsubscribe = driver.hub.subscribe(id, (e) => {
      if (e.type === 'results') results.push(...e.results)
      else if (e.type === 'finished') {
        unsubscribe()
        results.sort((a, b) => a.index - b.index)
        resolve({ id, status: e.status, total, results: results.map(resultJson) })
      }
    })
    signal.addEventListener('abort', () => {
      unsubscribe()
      reject(new ApiError(499, 'GN_CLIENT_GONE', 'the client went away'))
    })
  })
}

/** Event streams open at once on this daemon; past it, a new one is answered 503. */
export const MAX_EVENT_STREAMS = 256
/** Bytes an event stream may have waiting for its client before results wait for it to read. */
export const EVENT_STREAM_HIGH_WATER = 4 * 1024 * 1024
/** Stored results read per page while a stream catches up: pages of about EVENT_PAGE_BYTES. */
const EVENT_PAGE_MIN_ROWS = 4
const EVENT_PAGE_MAX_ROWS = 1000
const EVENT_PAGE_BYTES = 1024 * 1024
let eventStreams = 0

/**
 * The job's events as server-sent events: its progress, then its stored results, then results
 * and progress as they come, then `finished`. Results go out only as fast as the client reads:
 * whenever the stream has EVENT_STREAM_HIGH_WATER bytes waiting, it stops writing results and,
 * once drained, catches up from the store page by page (a result is sent once, whatever the
 * order). A client that never reads holds at most that much of the daemon's memory; before, each
 * such stream queued every result of the job (10 unread streams of a 50 MB job: +700 MB).
 */
function streamEvents(req: HttpApiRequest, driver: Driver): typeof STREAMED {
  const job = record(req, driver)
  if (eventStreams >= MAX_EVENT_STREAMS)
    throw new ApiError(
      503,
      'GN_BUSY',
      `${MAX_EVENT_STREAMS} event streams are open on this daemon; try later`,
    )
  eventStreams++
  const res = req.res
  res.writeHead(200, {
    'content-type': 'text/event-stream',
    'cache-control': 'no-store',
    connection: 'keep-alive',
  })
  const store = driver.hub.store
  const gone = () => res.writableEnded || res.destroyed
  // A client that went away mid-stream: stop writing (a write after the end must not become an error event).
  const send = (event: string, data: unknown): void => {
    if (!gone()) res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`)
  }
  // Only a write that returned false is followed by 'drain' (http's OutgoingMessage emits it then).
  const full = () => res.writableNeedDrain && res.writableLength > EVENT_STREAM_HIGH_WATER
  const seen = new Set<number>()
  const withResults = req.query.get('results') !== '0'
  /** Results not yet sent may be in the store (written while the stream was full or catching up). */
  let behind = withResults
  let pumping = false
  const finish = (): void => {
    const now = store.job(job.id)
    if (now === undefined || now.status === 'running' || gone()) return
    send('finished', {
      status: now.status,
      job: job.id,
      total: now.total,
      done: now.done,
      failed: now.failed,
      running: 0,
      nodes: now.nodes,
    })
    unsubscribe()
    res.end()
  }
  const drained = () =>
    new Promise<void>((resolve) => {
      const done = () => {
        res.off('drain', done)
        res.off('close', done)
        resolve()
      }
      res.on('drain', done)
      res.on('close', done)
    })
  /** Every index below this one has been sent: a catch-up starts there, not from the first result. */
  let sentBelow = 0
  const sent = (index: number) => {
    seen.add(index)
    while (seen.has(sentBelow)) sentBelow++
  }
  /** Sends what the store holds that this stream has not sent, waiting for the client as it goes. */
  const pump = async (): Promise<void> => {
    if (pumping) return
    pumping = true
    try {
      let rows = EVENT_PAGE_MIN_ROWS
      while (behind && !gone()) {
        behind = false
        for (let from = sentBelow; !gone(); ) {
          // One page at a time in the stream: the next is read once the client has taken this one.
          if (res.writableNeedDrain) await drained()
          const page = store.results(job.id, from, rows)
          if (page.length === 0) break
          from = page[page.length - 1].index + 1
          const fresh = page.filter((r) => !seen.has(r.index))
          for (const r of fresh) sent(r.index)
          if (fresh.length === 0) continue
          const before = res.writableLength
          send('results', fresh.map(resultJson))
          // Pages of about EVENT_PAGE_BYTES: more rows while they are small, fewer when large.
          const bytes = res.writableLength - before
          if (bytes < EVENT_PAGE_BYTES / 2) rows = Math.min(EVENT_PAGE_MAX_ROWS, rows * 2)
          else if (bytes > EVENT_PAGE_BYTES * 2) rows = Math.max(1, rows >> 1)
        }
      }
      finish()
    } finally {
      pumping = false
    }
  }
  const catchUp = () => {
    behind = true
    // A store read that throws (the daemon is stopping, the store closed): the stream ends, and
    // its client sees it lost.
    pump().catch(() => res.destroy())
  }
  const onEvent = (e: JobEvent) => {
    if (e.type === 'results') {
      if (!withResults) return
      if (pumping || full()) return catchUp()
      const fresh = e.results.filter((r) => !seen.has(r.index))
      for (const r of fresh) sent(r.index)
      if (fresh.length > 0) send('results', fresh.map(resultJson))
    } else if (e.type === 'finished') {
      // After every result: at once unless results are still to be sent (pump ends with it).
      if (!pumping) finish()
    } else if (full()) {
      // Progress and blocked reasons are states, not history: a full stream skips them.
    } else if (e.type === 'progress') send('progress', e.progress)
    else send('blocked', { reason: e.reason })
  }
  // Subscribe before reading the store so nothing falls between the two.
  const unsubscribe = driver.hub.subscribe(job.id, onEvent)
  res.once('close', () => {
    eventStreams--
    unsubscribe()
  })
  res.on('error', unsubscribe)
  const s = summary(job, driver)
  send('progress', {
    job: job.id,
    total: s.total,
    done: s.done,
    failed: s.failed,
    running: s.running,
    nodes: s.nodes,
  })
  if (s.blocked) send('blocked', { reason: s.blocked })
  if (withResults) catchUp()
  else finish()
  return STREAMED
}

// -- submission: a v8-encoded object (the client library builds it) -------------------

function bad(message: string): ApiError {
  return new ApiError(400, 'GN_BAD_SUBMIT', message)
}

function tooLarge(message: string): ApiError {
  return new ApiError(413, 'GN_TOO_LARGE', message)
}

/**
 * A submit body at most this size cannot make a push of the job and one of its tasks exceed one
 * wire message: the push carries a subset of the body's fields, re-encoded as CBOR, which takes at
 * most twice the bytes of their V8 serialization (a string: at most 2 UTF-8 bytes per Latin-1 char,
 * 3 per UTF-16 unit against 2; numbers, bytes and containers: no more), plus a fixed envelope
 * (owner id, job id, field names) well within the 64 KiB allowed here.
 */
const PUSH_ALWAYS_FITS_BODY_BYTES = (STEAL_MAX_MESSAGE_BYTES - 64 * 1024) / 2

/**
 * The wire's limits, applied at submit: whatever the owner accepts here can
 * travel to any node (a task input over MAX_VALUE_BYTES would otherwise be
 * accepted, never sent, and fail much later as a poison task). `bodyBytes`: the
 * size of the submit body; a small one skips encoding a trial push.
 */
export function checkSubmit(req: SubmitRequest, bodyBytes = Number.POSITIVE_INFINITY): SubmitRequest {
  let largest: TaskInput | undefined
  for (const t of req.tasks) {
    if (t.input.byteLength > MAX_VALUE_BYTES) {
      throw tooLarge(
        `task ${t.index}: input is ${t.input.byteLength} bytes; a task input may have at most ${MAX_VALUE_BYTES} bytes (${MAX_VALUE_BYTES / MiB} MiB)`,
      )
    }
    if (t.deps.length > MAX_DEPS) {
      throw bad(`task ${t.index}: ${t.deps.length} dependencies; a task may have at most ${MAX_DEPS}`)
    }
    if (largest === undefined || t.input.byteLength > largest.input.byteLength) largest = t
  }
  const spec: JobSpec = {
    id: 'submit-check',
    owner: SAMPLE_OWNER,
    work: req.work,
    resources: req.resources,
    timeoutMs: req.timeoutMs,
    maxAttempts: req.maxAttempts,
    retries: req.retries,
    ...(req.files ? { files: req.files } : {}),
    ...(req.outputs ? { outputs: req.outputs } : {}),
  }
  try {
    jobSpecCheck(spec, 'job')
  } catch (err) {
    throw bad(`the job does not fit the wire's limits: ${(err as Error).message}`)
  }
  if (largest !== undefined && bodyBytes > PUSH_ALWAYS_FITS_BODY_BYTES) {
    // The job travels with its tasks: one task with the largest input must fit in one message.
    try {
      stealRequestCodec.encode({
        t: 'push',
        batch: {
          jobs: [spec],
          tasks: [{ job: spec.id, index: largest.index, attempt: 1, input: largest.input, depValues: [] }],
        },
      })
    } catch (err) {
      if (!(err instanceof GridnodeError)) throw err
      throw tooLarge(
        `task ${largest.index}: the job's description and this task's input together exceed one wire message ` +
          `(${STEAL_MAX_MESSAGE_BYTES} bytes): ${err.message}`,
      )
    }
  }
  return req
}

/** A submitted job as the API reads it: the job, and optionally its id and the tasks of other jobs it waits for. */
export type ParsedSubmit = SubmitRequest & { id?: string; after?: AfterRef[] }

/** Job ids a client may choose (so a future's id is known before its submit returns). */
const JOB_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/

/**
 * Stores and schedules a job: at once, or (with `after`) once the tasks of other jobs it
 * waits for have ended (job-after.ts).
 */
function startJob(driver: Driver, req: SubmitRequest, p: ParsedSubmit): { id: string; total: number } {
  const store = driver.hub.store
  const after = p.after ?? []
  for (const [k, a] of after.entries()) {
    const up = store.job(a.job)
    if (up === undefined)
      throw bad(`after[${k}]: no job ${a.job} on this node (a job waits only for jobs of its owner)`)
    if (a.index >= up.total) throw bad(`after[${k}]: job ${a.job} has ${up.total} tasks, no task ${a.index}`)
  }
  try {
    if (after.length === 0) return driver.submit(req, { id: p.id })
    return driver.after.submit(req, p.id ?? newJobId(), after)
  } catch (err) {
    // A client-chosen id in use: the store refuses it before anything is scheduled.
    if (err instanceof JobExistsError) throw new ApiError(409, 'GN_BAD_SUBMIT', err.message)
    throw err
  }
}

function parseAfter(o: Record<string, unknown>): { id?: string; after?: AfterRef[] } {
  const out: { id?: string; after?: AfterRef[] } = {}
  if (o.id !== undefined && o.id !== null) {
    if (typeof o.id !== 'string' || !JOB_ID.test(o.id))
      throw bad('id must be 1-64 letters, digits, ".", "_" or "-", starting with a letter or digit')
    out.id = o.id
  }
  if (o.after !== undefined && o.after !== null) {
    if (!Array.isArray(o.after) || o.after.length > MAX_AFTER)
      throw bad(`after must be a list of at most ${MAX_AFTER} {job, index, onFailure} entries`)
    out.after = o.after.map((a: unknown, k: number) => {
      const r = (a ?? {}) as Record<string, unknown>
      if (typeof r.job !== 'string' || !JOB_ID.test(r.job)) throw bad(`after[${k}].job must be a job id`)
      const index = nonNegative(r.index, `after[${k}].index`, 0)
      const onFailure = r.onFailure ?? 'fail'
      if (onFailure !== 'fail' && onFailure !== 'pass')
        throw bad(`after[${k}].onFailure must be "fail" or "pass"`)
      return { job: r.job, index, onFailure }
    })
  }
  return out
}

export function parseSubmit(body: unknown): ParsedSubmit {
  if (!(body instanceof Uint8Array))
    throw bad('POST /v1/jobs takes an encoded job (application/octet-stream)')
  let o: Record<string, unknown>
  try {
    o = decodeValue(body) as Record<string, unknown>
  } catch (err) {
    throw bad(`cannot decode the job: ${(err as Error).message}`)
  }
  if (typeof o !== 'object' || o === null) throw bad('the job must be an object')
  const tasks = o.tasks
  // An empty job is a job: it finishes at once, done, with no results (an empty input list is not an error).
  if (!Array.isArray(tasks)) throw bad('a job needs a list of tasks')
  if (tasks.length > MAX_TASKS_PER_JOB) throw bad(`a job holds at most ${MAX_TASKS_PER_JOB} tasks`)
  return {
    name: parseName(o.name),
    work: parseWork(o.work),
    resources: parseResources(o.resources),
    timeoutMs: nonNegative(o.timeoutMs, 'timeoutMs', 0),
    retries: nonNegative(o.retries, 'retries', 0),
    maxAttempts: Math.max(1, nonNegative(o.maxAttempts, 'maxAttempts', 3)),
    tasks: checkAcyclic(tasks.map((t, i) => parseTask(t, i, tasks.length))),
    ...parseJobFiles(o),
    ...parseAfter(o),
  }
}

function parseName(name: unknown): string {
  if (name === undefined || name === null) return 'job'
  if (typeof name !== 'string') throw bad('name must be a string')
  if (name.length > MAX_JOB_NAME_LENGTH)
    throw bad(`name is ${name.length} characters; a job name may have at most ${MAX_JOB_NAME_LENGTH}`)
  return name
}

/** Dependencies must form a DAG, or some tasks would wait forever. */
function checkAcyclic(tasks: TaskInput[]): TaskInput[] {
  const waiting = tasks.map((t) => t.deps.length)
  const dependents: number[][] = tasks.map(() => [])
  for (const t of tasks) for (const d of t.deps) dependents[d].push(t.index)
  const ready = tasks.filter((t) => t.deps.length === 0).map((t) => t.index)
  let seen = 0
  while (ready.length > 0) {
    const i = ready.pop()!
    seen++
    for (const j of dependents[i]) if (--waiting[j] === 0) ready.push(j)
  }
  if (seen !== tasks.length)
    throw bad(`the task dependencies form a cycle (${tasks.length - seen} tasks on it or behind it)`)
  return tasks
}

function parseWork(w: unknown): WorkSpec {
  const o = w as Record<string, unknown> | undefined
  if (o?.kind === 'function') {
    if (typeof o.bundle !== 'string' || !/^[0-9a-f]{64}$/.test(o.bundle))
      throw bad('work.bundle must be a sha256 hex')
    if (typeof o.exportName !== 'string' || o.exportName.length === 0)
      throw bad('work.exportName is required')
    const call = o.call === 'apply' ? 'apply' : 'map'
    return { kind: 'function', bundle: o.bundle, exportName: o.exportName, call }
  }
  if (o?.kind === 'command') {
    const argv = o.argv
    if (!Array.isArray(argv) || argv.length === 0 || !argv.every((a) => typeof a === 'string')) {
      throw bad('work.argv must be a non-empty list of strings')
    }
    const env = (o.env ?? {}) as Record<string, unknown>
    if (!Object.values(env).every((v) => typeof v === 'string')) throw bad('work.env values must be strings')
    return {
      kind: 'command',
      argv,
      env: env as Record<string, string>,
      stdoutMaxBytes: outputCap(o.stdoutMaxBytes),
    }
  }
  if (o?.kind === 'noop') return { kind: 'noop' }
  throw bad('work.kind must be function, command or noop')
}

function parseResources(r: unknown): Resources {
  const o = (r ?? {}) as Record<string, unknown>
  return {
    cpu: nonNegative(o.cpu, 'cpu', 1),
    gpu: nonNegative(o.gpu, 'gpu', 0),
    memoryMB: nonNegative(o.memoryMB, 'memoryMB', 0),
  }
}

function parseTask(t: unknown, i: number, total: number): TaskInput {
  const o = t as Record<string, unknown>
  if (!(o?.input instanceof Uint8Array)) throw bad(`task ${i}: input must be encoded bytes`)
  const deps = (o.deps ?? []) as unknown[]
  if (
    !Array.isArray(deps) ||
    !deps.every((d) => Number.isInteger(d) && (d as number) >= 0 && (d as number) < total && d !== i)
  ) {
    throw bad(`task ${i}: deps must be indexes of other tasks of the job`)
  }
  return { index: i, input: o.input, deps: deps as number[] }
}

/** A command job's stdout / stderr cap: default 1 MiB, at most MAX_COMMAND_OUTPUT_BYTES. */
function outputCap(v: unknown): number {
  const n = nonNegative(v, 'stdoutMaxBytes', 1 << 20)
  if (n > MAX_COMMAND_OUTPUT_BYTES)
    throw bad(
      `stdoutMaxBytes ${n}: at most ${MAX_COMMAND_OUTPUT_BYTES} (3 MiB; stdout and stderr, each up to it, make one result of at most 8 MiB)`,
    )
  return n
}

function nonNegative(v: unknown, name: string, fallback: number): number {
  if (v === undefined || v === null) return fallback
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 0) throw bad(`${name} must be a whole number ≥ 0`)
  return v
}
