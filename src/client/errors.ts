import { GridnodeError } from '../errors.ts'

/** One task of a job failed: its index, message and (for thrown errors) the remote stack. */
export class TaskError extends GridnodeError {
  readonly index: number
  readonly remoteStack?: string
  constructor(index: number, message: string, remoteStack?: string) {
    super('GN_TASK_FAILED', `task ${index}: ${message}`)
    this.index = index
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
      `${failures.length} of ${total} tasks of job ${jobId} failed (${first}${failures.length > 3 ? '; …' : ''})`,
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
