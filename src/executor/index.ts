/**
 * The executor layer: runs tasks on this machine behind one Executor
 * interface (worker threads for functions, child processes for commands),
 * plus the value codec, the blob store and the bundler that tasks rely on.
 *
 * Sandbox (sandbox/): tasks of other nodes run in bubblewrap. The daemon
 * probes once at start, `probeSandbox(mode, { baseDir })`, and hands the
 * result to `createLocalExecutor({ self, sandbox: { status, host, own } })`.
 * What the rest of the node uses:
 * - `executor.sandboxStatus()`: `{ mode, available, acceptsForeign, reason }`.
 *   `acceptsForeign` false: this node must not take other nodes' tasks
 *   (adverts, steals, pushes); one that reaches run() anyway ends `rejected`
 *   (GN_NO_SANDBOX) with the reason.
 * - `run(job, task, { gpus, signal, foreign?, sandboxed?, network? })`: the
 *   driver may say per run whether it is sandboxed (policy `sandboxOwn`) and
 *   whether it keeps the network (policy `network`).
 * - Owner policy: `suspend(taskKey)` / `resume(taskKey)` (SIGSTOP/SIGCONT to
 *   the task's whole sandbox or process group; its time limit pauses),
 *   `signalForeign('SIGSTOP' | 'SIGCONT')` for every running foreign task,
 *   and `evict(taskKey, reason)`: kills the task now and its run() resolves
 *   `{ status: 'returned', error: reason }` (handed back to its owner).
 */
export { assertBlobHash, BlobStore, isBlobHash, sha256Hex } from './blob-store.ts'
export { type Bundle, type BundleOptions, bundleModule } from './bundle.ts'
export { type CommandResult, type CommandTask, runCommand } from './command.ts'
export {
  BadHashError,
  BadValueError,
  BlobHashMismatchError,
  BundleBuildError,
  BundleNotFoundError,
  ModuleNotFoundError,
  UnserializableError,
} from './errors.ts'
export {
  createLocalExecutor,
  type Executor,
  type ExecutorSandboxOptions,
  type LocalExecutorOptions,
  type RunOptions,
} from './executor.ts'
export {
  type ProbeOptions,
  type ProbeResult,
  probeSandbox,
  SANDBOX_MODES,
  type SandboxHost,
  type SandboxLimitOptions,
  type SandboxMode,
  type SandboxStatus,
} from './sandbox/index.ts'
export { decodeValue, encodeValue } from './values.ts'
export { type PoolStats, type PoolTask, WorkerPool, type WorkerPoolOptions } from './worker-pool.ts'
export { missingExportMessage } from './worker-protocol.ts'
