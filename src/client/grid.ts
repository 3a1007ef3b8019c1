/**
 * The library users import: `connect()` finds the local daemon through the
 * data dir; `grid.map()` bundles a module with its imports (esbuild), stores
 * it on the daemon as a content-addressed blob and submits one task per
 * input; `grid.submit()` runs single tasks and takes futures as arguments;
 * `grid.run()` fans a command out over inputs.
 */

import { fileURLToPath } from 'node:url'
import type { JobSummary } from '../domain/api.ts'
import { bundleModule } from '../domain/bundle.ts'
import { NoDaemonError } from '../domain/errors.ts'
import type { FileEntry, WorkSpec } from '../domain/types.ts'
import { encodeValue, encodeWith } from '../domain/values.ts'
import { DaemonClient, type DaemonClientOptions } from './daemon-client.ts'
import { BadSubmitError } from './errors.ts'
import { type InputFileStep, prepareInputs } from './files.ts'
import { type Future, Graph, submitTask } from './futures.ts'
import { decodeWireResult, Job, type TaskResultOf, type WireResult } from './job.ts'

export interface TaskOptions {
  /** CPU slots per task (default 1). */
  cpu?: number
  /** Whole GPUs per task (default 0). */
  gpu?: number
  /**
   * Memory per task in MB (default 0: no reservation; function tasks get a default heap limit).
   * A limit too: commands run under RLIMIT_DATA of it, function tasks in the sandbox where one works
   * (README: what --memory covers).
   */
  memoryMB?: number
  /** Per-task time limit in ms (default none). */
  timeoutMs?: number
  /** Runs again a task that threw or timed out, this many times (default 0). */
  retries?: number
  /** Infrastructure failures (node lost, worker crashed) a task may suffer before it fails as poison (default 3). */
  maxAttempts?: number
  /** A name for `gridnode jobs`. */
  name?: string
  /**
   * Files or directories staged read-only into each task's working directory, under their base
   * names. A function task given files or outputs runs with that directory as its cwd (in a
   * process slot of its own, not a worker thread), so it reads and writes them by relative path.
   */
  files?: string[]
  /** Globs of files in each task's working directory to bring back when it ends (`*.png`, `out/**`). */
  outputs?: string[]
  /** Bytes of output files one task may bring back (default 1 GiB); over it, the task fails. */
  outputFilesMaxBytes?: number
  /** Writes each task's outputs under this directory as results arrive (`{}`: the task's input). */
  outputDir?: string
}

export interface CommandResult {
  exitCode: number
  stdout: string
  stderr: string
  /** stdout went past the job's cap (`outputMaxBytes`, default 1 MiB): `stdout` holds its first part. */
  stdoutTruncated?: boolean
  /** stderr went past the cap: `stderr` holds its last part. */
  stderrTruncated?: boolean
}

export type { JobSummary } from '../domain/api.ts'

export class Grid {
  readonly client: DaemonClient
  private readonly bundles = new Map<string, Promise<{ hash: string; exports: string[] }>>()

  constructor(client: DaemonClient) {
    this.client = client
  }

  /** Runs `module`'s export over every input; results stream back as they complete. */
  map<T = unknown, R = unknown>(
    module: URL | string,
    exportName: string,
    inputs: Iterable<T>,
    options: TaskOptions = {},
  ): Job<R> {
    const items = [...inputs]
    // The job exists before its first file step is heard (prepareInputs awaits before any).
    let job: Job<R> | undefined
    const id = Promise.all([
      this.bundle(module, exportName),
      this.inputFiles(options, (s) => job?.emit('inputs', s)),
    ]).then(([bundle, files]) =>
      this.submitJob(
        { kind: 'function', bundle, exportName, call: 'map' },
        items.map((v) => ({ input: encodeValue(v, 'input') })),
        { name: `${exportName} ×${items.length}`, ...options },
        files,
      ),
    )
    job = new Job<R>(this.client, id)
    return this.withOutputs(job, options, items.map(inputText))
  }

  /**
   * Runs one call of `module`'s export with `args`, as a job of its own; the Future it returns
   * has the job's id at once. Futures among the args are dependencies the owner daemon
   * resolves: this task is scheduled there once they ended, with their values in their places
   * (a failed one fails it, saying which; wrap one in orError() to get its error instead). Once
   * `future.submitted` resolved, the caller may exit: the task (and what it waits for) runs on.
   */
  submit<R = unknown>(
    module: URL | string,
    exportName: string,
    args: unknown[] = [],
    options: TaskOptions = {},
  ): Future<R> {
    return this.submitGated<R>(module, exportName, args, options)
  }

  /**
   * A task graph: `g.add(module, export, args, options)` returns a handle (a Future) that later
   * add()s may take as arguments; `await g.run()` submits every task, each a job of its own with
   * its dependencies resolved by the owner daemon, and resolves once the daemon has them all.
   */
  graph(): Graph {
    return new Graph((module, exportName, args, options, gate) =>
      this.submitGated(module, exportName, args, options, gate),
    )
  }

  private submitGated<R>(
    module: URL | string,
    exportName: string,
    args: unknown[],
    options: TaskOptions,
    gate?: Promise<void>,
  ): Future<R> {
    return submitTask<R>({
      client: this.client,
      bundle: () => this.bundle(module, exportName),
      exportName,
      args,
      options,
      gate,
      detached: gate !== undefined,
    })
  }

  /**
   * Runs `argv` once per input, `{}` in an argument replaced by the input (as GNU parallel does);
   * with no `{}` in any argument, the input is added as the last argument (as the CLI does).
   */
  run(
    argvIn: string[],
    inputs: Iterable<string>,
    options: TaskOptions & { env?: Record<string, string>; outputMaxBytes?: number } = {},
  ): Job<CommandResult> {
    const items = [...inputs]
    const argv = argvIn.some((a) => a.includes('{}')) ? argvIn : [...argvIn, '{}']
    const work: WorkSpec = {
      kind: 'command',
      argv,
      env: options.env ?? {},
      stdoutMaxBytes: options.outputMaxBytes ?? 1 << 20,
    }
    let job: Job<CommandResult> | undefined
    const id = this.inputFiles(options, (s) => job?.emit('inputs', s)).then((files) =>
      this.submitJob(
        work,
        items.map((v) => ({ input: encodeValue(v, 'input') })),
        { name: `${argv.join(' ').slice(0, 60)} ×${items.length}`, ...options },
        files,
      ),
    )
    job = new Job<CommandResult>(this.client, id)
    return this.withOutputs(job, options, items)
  }

  /** Follows a job submitted earlier (from this node), by id. */
  attach<R = unknown>(id: string): Job<R> {
    return new Job<R>(this.client, Promise.resolve(id))
  }

  jobs(limit = 100): Promise<JobSummary[]> {
    return this.client.request('GET', `/v1/jobs?limit=${limit}`)
  }

  job(id: string): Promise<JobSummary> {
    return this.client.request('GET', `/v1/jobs/${encodeURIComponent(id)}`)
  }

  /**
   * The stored results of a job, in input order, decoded, each with the node
   * that ran it and how long it took. Read from the owner's store: works for
   * finished jobs, after a daemon restart, and mid-job (the results so far).
   */
  async results<R = unknown>(id: string): Promise<TaskResultOf<R>[]> {
    const wire = await this.client.request<WireResult[]>('GET', `/v1/jobs/${encodeURIComponent(id)}/results`)
    return wire.map((w) => decodeWireResult<R>(w))
  }

  /** Cancels a job by id; answers its status afterwards ('cancelled', or how it had already ended). */
  cancel(id: string): Promise<{ id: string; status: JobSummary['status'] }> {
    return this.client.request('POST', `/v1/jobs/${encodeURIComponent(id)}/cancel`)
  }

  /**
   * Bundles the module, stores it on the daemon and answers its blob hash. A module without
   * `exportName` is refused here, before any job exists (BadSubmitError; the CLI exits 2).
   */
  private async bundle(module: URL | string, exportName: string): Promise<string> {
    const path = module instanceof URL ? fileURLToPath(module) : module
    let stored = this.bundles.get(path)
    if (!stored) {
      stored = bundleModule(path).then(async (b) => {
        const { hash } = await this.client.request<{ hash: string }>('POST', '/v1/blobs', b.bytes)
        return { hash, exports: b.exports }
      })
      stored.catch(() => this.bundles.delete(path))
      this.bundles.set(path, stored)
    }
    const { hash, exports } = await stored
    if (!exports.includes(exportName)) {
      const has = exports.length === 0 ? 'no exports' : `its exports: ${exports.join(', ')}`
      throw new BadSubmitError(`${path} has no export named "${exportName}" (${has})`)
    }
    return hash
  }

  private async submitJob(
    work: WorkSpec,
    tasks: Array<{ input: Uint8Array; deps?: number[] }>,
    o: TaskOptions,
    files?: FileEntry[],
  ): Promise<string> {
    const { id } = await this.client.request<{ id: string }>(
      'POST',
      '/v1/jobs',
      jobBody(work, tasks, o, files),
    )
    return id
  }

  /** The job's input files, hashed and uploaded where the daemon lacks them (none: undefined). */
  private inputFiles(o: TaskOptions, onStep?: (s: InputFileStep) => void): Promise<FileEntry[] | undefined> {
    return o.files && o.files.length > 0
      ? prepareInputs(this.client, o.files, onStep)
      : Promise.resolve(undefined)
  }

  /** With `outputDir`, the job writes its outputs there as results arrive. */
  private withOutputs<J extends { writeOutputs(dir: string, inputs?: readonly string[]): unknown }>(
    job: J,
    o: TaskOptions,
    inputs: string[],
  ): J {
    if (o.outputDir !== undefined) job.writeOutputs(o.outputDir, inputs)
    return job
  }
}

function jobBody(
  work: WorkSpec,
  tasks: Array<{ input: Uint8Array; deps?: number[] }>,
  o: TaskOptions,
  files?: FileEntry[],
): Uint8Array {
  const outputs =
    o.outputs && o.outputs.length > 0
      ? {
          globs: o.outputs,
          ...(o.outputFilesMaxBytes !== undefined ? { maxBytes: o.outputFilesMaxBytes } : {}),
          ...(o.outputDir?.includes('{}') ? { perTask: true } : {}),
        }
      : undefined
  const fields = {
    ...(files ? { files } : {}),
    ...(outputs ? { outputs } : {}),
    name: o.name,
    work,
    resources: { cpu: o.cpu ?? 1, gpu: o.gpu ?? 0, memoryMB: o.memoryMB ?? 0 },
    timeoutMs: o.timeoutMs ?? 0,
    retries: o.retries ?? 0,
    maxAttempts: o.maxAttempts ?? 3,
  }
  // The tasks hold encodeValue's bytes already: only the rest is checked.
  return encodeWith(fields, 'tasks', tasks)
}

export interface ConnectOptions extends DaemonClientOptions {
  /** How long the daemon may take to answer before connect() gives up (default 10 s). */
  timeoutMs?: number
}

/**
 * Connects to the local daemon (found through `dataDir`, $GRIDNODE_HOME or
 * ~/.gridnode) and checks that it answers. Throws NoDaemonError
 * (GN_NO_DAEMON), whose message names the data dir and the command that
 * starts a daemon there, when none runs or it does not answer in time.
 */
export async function connect(opts: ConnectOptions = {}): Promise<Grid> {
  const client = DaemonClient.open(opts)
  const timeoutMs = opts.timeoutMs ?? 10_000
  const signal = AbortSignal.timeout(timeoutMs)
  try {
    await client.request('GET', '/v1/status', undefined, signal)
  } catch (err) {
    if (!signal.aborted) throw err
    throw new NoDaemonError(client.dataDir, `its API did not answer within ${timeoutMs} ms`)
  }
  return new Grid(client)
}

/** An input as `{}` in an output dir sees it: a string as is, anything else as JSON. */
function inputText(v: unknown): string {
  return typeof v === 'string' ? v : (JSON.stringify(v) ?? String(v))
}
