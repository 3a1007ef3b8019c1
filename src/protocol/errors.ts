/**
 * Errors of the protocol layer beyond the shared RemoteProtocolError (the peer
 * broke the protocol) and LocalProtocolError (we were about to).
 */
import { GridnodeError } from '../errors.ts'

/** The peer understood the request but its handler failed; it sent an error reply. */
export class RemoteRequestError extends GridnodeError {
  /** The code the peer reported (its error's `code`, or GN_HANDLER_FAILED). */
  readonly remoteCode: string

  constructor(remoteCode: string, message: string) {
    super('GN_REMOTE_REQUEST', message)
    this.remoteCode = remoteCode
  }
}

/** The stream carrying a request broke or closed before the reply came. */
export class StreamBrokenError extends GridnodeError {
  constructor(message = 'stream closed before the reply arrived', options?: { cause?: unknown }) {
    super('GN_STREAM_BROKEN', message, options)
  }
}

/** No reply within the request's time limit; the stream it was on has been aborted. */
export class RequestTimeoutError extends GridnodeError {
  constructor(message = 'request timed out', options?: { cause?: unknown }) {
    super('GN_REQUEST_TIMEOUT', message, options)
  }
}

/** The client was closed. */
export class ClientClosedError extends GridnodeError {
  constructor(message = 'client closed') {
    super('GN_CLIENT_CLOSED', message)
  }
}

/** A blob is larger than the caller allowed. */
export class BlobTooLargeError extends GridnodeError {
  constructor(message: string) {
    super('GN_BLOB_TOO_LARGE', message)
  }
}

/** A peer sent requests faster than its rate limit allows; the request was not handled. */
export class RateLimitedError extends GridnodeError {
  constructor(message: string) {
    super('GN_RATE_LIMITED', message)
  }
}
