import { GridnodeError } from '../errors.ts'

/** A value cannot be encoded (a function, a symbol, a class instance, a cycle too deep...). */
export class UnserializableError extends GridnodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GN_UNSERIALIZABLE', message, options)
  }
}

/** Bytes that are not an encoded value. */
export class BadValueError extends GridnodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GN_BAD_VALUE', message, options)
  }
}

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

/** The entry file given to bundleModule does not exist. */
export class ModuleNotFoundError extends GridnodeError {
  constructor(message: string) {
    super('GN_MODULE_NOT_FOUND', message)
  }
}

/** esbuild failed to bundle a module (syntax error, unresolvable import...). */
export class BundleBuildError extends GridnodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GN_BUNDLE_BUILD', message, options)
  }
}
