import { GridnodeError } from '../errors.ts'

/** One task of a job failed: its index, message and (for thrown errors) the remote stack. */
export class TaskError extends GridnodeError {
  readonly index: number
  /** The task's own message, without the `task N: ` prefix. */
  readonly reason: string
  readonly remoteStack?: string
  constructor(index: number, message: string, remoteStack?: string) {
    super('GN_TASK_FAILED', `task ${index}: ${message}`)
    this.index = index
    this.reason = message
    this.remoteStack = remoteStack
  }
}

/** `job.results()` when some tasks failed: a summary plus every failure. */
export class JobFailedError extends GridnodeError {
  readonly failures: TaskError[]
  constructor(jobId: string, total: number, failures: TaskError[]) {
    const first = failures
      .slice(0, 3)
      .map((f) => f.message)
      .join('; ')
    super(
      'GN_JOB_FAILED',
      `${failures.length} of ${total} tasks of job ${jobId} failed (${first}${failures.length > 3 ? '; …' : ''}); ` +
        'err.failures has each one with its remote stack, and iterating the job gives the values that succeeded',
    )
    this.failures = failures
  }
}

/** The job was cancelled before every task finished. */
export class JobCancelledError extends GridnodeError {
  constructor(jobId: string) {
    super('GN_JOB_CANCELLED', `job ${jobId} was cancelled`)
  }
}

/** Inputs given as text (JSON Lines, plain lines) that cannot be used. The CLI exits 2. */
export class BadInputError extends GridnodeError {
  constructor(message: string) {
    super('GN_BAD_INPUT', message)
  }
}

/** The daemon has no job with this id. */
export class NoSuchJobError extends GridnodeError {
  constructor(message: string) {
    super('GN_NO_SUCH_JOB', message)
  }
}

/** The daemon refused a job as submitted (bad options, too many tasks, a dependency cycle). */
export class BadSubmitError extends GridnodeError {
  constructor(message: string) {
    super('GN_BAD_SUBMIT', message)
  }
}

/** The event stream of a job broke before it finished: the daemon stopped or restarted. */
export class JobStreamLostError extends GridnodeError {
  readonly jobId: string
  constructor(jobId: string, cause?: unknown) {
    super(
      'GN_JOB_STREAM_LOST',
      `job ${jobId}: the daemon went away before the job finished; once it runs again, ` +
        `\`gridnode results ${jobId} --wait\` (or grid.attach('${jobId}')) picks the job up`,
    )
    this.jobId = jobId
    if (cause !== undefined) this.cause = cause
  }
}

const BY_CODE: Record<string, new (message: string) => GridnodeError> = {
  GN_NO_SUCH_JOB: NoSuchJobError,
  GN_BAD_SUBMIT: BadSubmitError,
  GN_BAD_INPUT: BadInputError,
}

/** Rebuilds the typed error for a `{ code, message }` the daemon sent. */
export function errorFromCode(code: string, message: string): GridnodeError {
  const Ctor = BY_CODE[code]
  return Ctor ? new Ctor(message) : new GridnodeError(code, message)
}
