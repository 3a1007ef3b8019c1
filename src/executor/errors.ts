import { GridnodeError } from '../errors.ts'

export {
  BadValueError,
  BundleBuildError,
  ModuleNotFoundError,
  UnserializableError,
} from '../domain/errors.ts'

/** Bytes that arrived for a hash do not hash to it. */
export class BlobHashMismatchError extends GridnodeError {
  constructor(message: string) {
    super('GN_BLOB_HASH_MISMATCH', message)
  }
}

/** A string that is not a sha256 hex digest was given as a blob hash. */
export class BadHashError extends GridnodeError {
  constructor(message: string) {
    super('GN_BAD_HASH', message)
  }
}

/** A bundle needed by a task is neither here nor obtainable. */
export class BundleNotFoundError extends GridnodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GN_BUNDLE_NOT_FOUND', message, options)
  }
}
