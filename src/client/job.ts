/**
 * A submitted job as the library sees it: an async iterable of results in
 * completion order, `results()` in input order, `cancel()`, and progress
 * events. It follows the owner's event stream, which replays stored results
 * first, so it can be attached to a job at any time, even after a restart.
 */

import { EventEmitter } from 'node:events'
import type { JobEndStatus, Progress, WireResult } from '../domain/api.ts'
import type { OutputFile } from '../domain/types.ts'
import { decodeValue } from '../domain/values.ts'
import type { DaemonClient } from './daemon-client.ts'
import { JobCancelledError, JobFailedError, JobStreamLostError, TaskError } from './errors.ts'
import { type InputFileStep, OutputWriter } from './files.ts'
import { readSse } from './sse.ts'

/** Where and how long a task ran, when the daemon said (it always does for results it stores). */
export interface TaskMeta {
  /** Peer ID of the node that ran the task. */
  ranOn?: string
  durationMs?: number
  /** Output files the task brought back (name relative to its working dir, size, sha256). */
  outputs?: OutputFile[]
}

export type TaskResultOf<R> =
  | ({ index: number; value: R; error?: undefined } & TaskMeta)
  | ({ index: number; error: TaskError; value?: undefined } & TaskMeta)

export type { JobEndStatus, Progress, WireResult } from '../domain/api.ts'

export interface JobEvents {
  /** Before the job is submitted: its input files being hashed and uploaded, one step at a time. */
  inputs: [InputFileStep]
  progress: [Progress]
  result: [TaskResultOf<unknown>]
  blocked: [string]
  finished: [JobEndStatus]
}

export class Job<R = unknown> extends EventEmitter<JobEvents> implements AsyncIterable<TaskResultOf<R>> {
  readonly id: Promise<string>
  private readonly client: DaemonClient
  private readonly collected = new Map<number, TaskResultOf<R>>()
  private readonly waiters: Array<() => void> = []
  private queue: TaskResultOf<R>[] = []
  private ended?: { status: JobEndStatus } | { error: Error }
  private total = 0
  private readonly following: Promise<void>
  private readonly controller = new AbortController()
  private blockedReason = ''
  private latest: Progress | undefined
  private writer?: OutputWriter

  constructor(client: DaemonClient, id: Promise<string>) {
    super()
    this.client = client
    this.id = id
    // Submission errors surface through results() / iteration, not as unhandled rejections.
    this.id.catch(() => {})
    this.following = this.follow().catch((err: Error) => this.end({ error: err }))
  }

  /** The latest progress counts (undefined until the first event). */
  get progress(): Progress | undefined {
    return this.latest
  }

  /** Why no node can run this job's tasks right now ('' when none). */
  get blocked(): string {
    return this.blockedReason
  }

  async *[Symbol.asyncIterator](): AsyncIterator<TaskResultOf<R>> {
    while (true) {
      if (this.queue.length > 0) {
        yield this.queue.shift()!
        continue
      }
      if (this.ended) {
        if ('error' in this.ended) throw this.ended.error
        return
      }
      await new Promise<void>((resolve) => this.waiters.push(resolve))
    }
  }

  /** Every value in input order; rejects with a JobFailedError summary if any task failed. */
  async results(): Promise<R[]> {
    const status = await this.done()
    const id = await this.id
    if (status === 'cancelled') throw new JobCancelledError(id)
    const ordered = [...this.collected.values()].sort((a, b) => a.index - b.index)
    const failures = ordered.flatMap((r) => (r.error ? [r.error] : []))
    if (failures.length > 0) throw new JobFailedError(id, this.total, failures)
    return ordered.map((r) => r.value as R)
  }

  /** Resolves with the job's final status once every result is in. */
  async done(): Promise<JobEndStatus> {
    await this.following
    await this.writer?.idle()
    if (!this.ended) throw new Error('job stream ended without a status')
    if ('error' in this.ended) throw this.ended.error
    return this.ended.status
  }

  /**
   * Stops the job on every node: queued tasks are dropped and running ones
   * killed. Results already in stay; the job ends with status 'cancelled'.
   */
  async cancel(): Promise<void> {
    await this.client.request('POST', `/v1/jobs/${encodeURIComponent(await this.id)}/cancel`)
  }

  /**
   * Writes every result's output files under `dir` as results arrive (`{}` in
   * `dir` is replaced by the task's input from `inputs`); done() and results()
   * wait for the writes. Returns the writer (its `errors` name the tasks whose
   * outputs could not be written, e.g. two tasks writing one path).
   */
  writeOutputs(dir: string, inputs?: readonly string[]): OutputWriter {
    if (this.writer === undefined) {
      const writer = new OutputWriter(this.client, dir, inputs)
      this.writer = writer
      for (const r of this.collected.values()) writer.add(r)
      this.on('result', (r) => writer.add(r))
    }
    return this.writer
  }

  /**
   * Fetches every output of the job (so far) from the owner's store into
   * `dir` (`{}` replaced by the task's input from `inputs`); resolves with
   * what was written and the errors per task.
   */
  async download(dir: string, inputs?: readonly string[]): Promise<OutputWriter> {
    const id = await this.id
    const wire = await this.client.request<WireResult[]>('GET', `/v1/jobs/${encodeURIComponent(id)}/results`)
    const writer = new OutputWriter(this.client, dir, inputs)
    for (const w of wire) writer.add(w)
    await writer.idle()
    return writer
  }

  /** Stops following the job (the job itself goes on). */
  detach(): void {
    this.controller.abort()
  }

  private async follow(): Promise<void> {
    const id = await this.id
    const res = await this.client.fetch(
      'GET',
      `/v1/jobs/${encodeURIComponent(id)}/events`,
      undefined,
      this.controller.signal,
    )
    try {
      for await (const e of readSse(res)) if (this.onEvent(e.event, JSON.parse(e.data))) return
    } catch (err) {
      // The daemon went away mid-stream (undici says "terminated"): one clear error, not a fetch stack.
      if (this.controller.signal.aborted) return
      if (!this.ended) this.end({ error: new JobStreamLostError(id, err) })
      return
    }
    if (!this.ended) this.end({ error: new JobStreamLostError(id) })
  }

  /** One event of the job's stream; true once it finished. */
  private onEvent(event: string, data: Progress & { reason: string; status: JobEndStatus }): boolean {
    if (event === 'results') for (const r of data as unknown as WireResult[]) this.onResult(r)
    else if (event === 'progress') {
      this.total = (data as Progress).total
      this.latest = data as Progress
      this.emit('progress', data as Progress)
    } else if (event === 'blocked') {
      this.blockedReason = data.reason
      this.emit('blocked', this.blockedReason)
    } else if (event === 'finished') {
      this.total = data.total
      const { status, reason: _, ...progress } = data
      this.latest = { ...progress, running: 0 }
      this.emit('progress', this.latest)
      this.end({ status })
      this.controller.abort()
      return true
    }
    return false
  }

  private onResult(w: WireResult): void {
    if (this.collected.has(w.index)) return
    const r = decodeWireResult<R>(w)
    this.collected.set(w.index, r)
    this.queue.push(r)
    this.emit('result', r as TaskResultOf<unknown>)
    this.wake()
  }

  private end(how: { status: JobEndStatus } | { error: Error }): void {
    if (this.ended) return
    this.ended = how
    if ('status' in how) this.emit('finished', how.status)
    this.wake()
  }

  private wake(): void {
    for (const w of this.waiters.splice(0)) w()
  }
}

/** A result as the API sends it, decoded: the value, or a TaskError with the remote message and stack. */
export function decodeWireResult<R>(w: WireResult): TaskResultOf<R> {
  const meta: TaskMeta = {
    ranOn: w.ranOn,
    durationMs: w.durationMs,
    ...(w.outputs ? { outputs: w.outputs } : {}),
  }
  if (!w.ok) {
    return {
      index: w.index,
      error: new TaskError(w.index, w.error ?? 'failed', w.stack ?? undefined),
      ...meta,
    }
  }
  try {
    const value = (w.value ? decodeValue(Buffer.from(w.value, 'base64')) : undefined) as R
    return { index: w.index, value, ...meta }
  } catch (err) {
    const error = new TaskError(w.index, `result cannot be decoded: ${(err as Error).message}`)
    return { index: w.index, error, ...meta }
  }
}
