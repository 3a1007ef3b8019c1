/**
 * gridnode's library: `import { connect } from 'gridnode'`.
 *
 *   const grid = await connect()
 *   const job = grid.map(new URL('./work.ts', import.meta.url), 'score', inputs, { cpu: 1 })
 *   for await (const r of job) { ... }       // { index, value } or { index, error }, as they complete
 *   const all = await job.results()          // input order; rejects with a summary if any failed
 */

export {
  BundleBuildError,
  ModuleNotFoundError,
  NoDaemonError,
  UnserializableError,
} from '../domain/errors.ts'
export { GridnodeError } from '../errors.ts'
export { DaemonClient, type DaemonClientOptions } from './daemon-client.ts'
export {
  BadInputError,
  BadSubmitError,
  JobCancelledError,
  JobFailedError,
  JobStreamLostError,
  NoSuchJobError,
  TaskError,
} from './errors.ts'
export { Future, Graph, OrError, orError } from './futures.ts'
export {
  type CommandResult,
  type ConnectOptions,
  connect,
  Grid,
  type JobSummary,
  type TaskOptions,
} from './grid.ts'
export { type ParsedInputs, parseJsonLines, parsePlainLines } from './inputs.ts'
export { Job, type JobEndStatus, type Progress, type TaskMeta, type TaskResultOf } from './job.ts'
export { type JsonValue, toJsonSafe } from './json-safe.ts'
export { formatProgress, ProgressMeter, type ProgressView } from './progress.ts'
