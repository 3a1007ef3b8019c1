/**
 * The executor layer: runs tasks on this machine behind one Executor
 * interface (worker threads for functions, child processes for commands),
 * plus the value codec, the blob store and the bundler that tasks rely on.
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
  type LocalExecutorOptions,
  type RunOptions,
} from './executor.ts'
export { decodeValue, encodeValue } from './values.ts'
export { type PoolStats, type PoolTask, WorkerPool, type WorkerPoolOptions } from './worker-pool.ts'
export { missingExportMessage } from './worker-protocol.ts'
