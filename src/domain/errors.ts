/** Errors of the shared vocabulary: values that cannot be encoded or decoded, bundles that cannot be built, no daemon. */
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

/** No daemon answers for this data dir. The CLI exits 3. */
export class NoDaemonError extends GridnodeError {
  constructor(dataDir: string, detail: string) {
    super(
      'GN_NO_DAEMON',
      `no gridnode daemon is running for data dir ${dataDir} (${detail}); start one with: gridnode start --data-dir ${dataDir}`,
    )
  }
}
