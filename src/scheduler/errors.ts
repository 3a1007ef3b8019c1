import { GridnodeError } from '../errors.ts'

/** checkInvariants() found the scheduler's state inconsistent: a bug in the scheduler. */
export class SchedulerInvariantError extends GridnodeError {
  constructor(message: string) {
    super('GN_SCHEDULER_INVARIANT', message)
  }
}

export function invariant(ok: boolean, message: string | (() => string)): asserts ok {
  if (!ok) throw new SchedulerInvariantError(typeof message === 'string' ? message : message())
}

export function assertNever(x: never): never {
  throw new SchedulerInvariantError(`unexpected value: ${JSON.stringify(x)}`)
}
