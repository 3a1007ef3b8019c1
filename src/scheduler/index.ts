/**
 * The scheduler: pure, deterministic state machines. Events in, commands
 * out; time is passed in. See scheduler.ts.
 */

export { SchedulerInvariantError } from './errors.ts'
export type { SchedulerOptions, SchedulerStats } from './runtime.ts'
export { NodeScheduler } from './scheduler.ts'
export * from './types.ts'
