/**
 * The scheduler: pure, deterministic state machines. Events in, commands
 * out; time is passed in. See scheduler.ts.
 */

export {
  canHandOn,
  copyOf,
  type HandOffSigner,
  handOff,
  MAX_COPY,
  MAX_CUSTODY_LINKS,
  type PathVerifier,
  pathOf,
  TRUSTED_SIGNER,
  trustedHoldings,
  trustedResults,
  verifiedPath,
} from './credentials.ts'
export { SchedulerInvariantError } from './errors.ts'
export type { SchedulerOptions, SchedulerStats } from './runtime.ts'
export { NodeScheduler, pushAllowed } from './scheduler.ts'
export { LEGAL_MOVES, type StoryEntry } from './story.ts'
export * from './types.ts'
export type { MemberReason, TaskWhy } from './why.ts'
