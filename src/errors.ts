/**
 * One base class for every error gridnode raises on purpose. `code` is stable
 * and survives JSON (the local API sends `{ code, message }` and the client
 * rebuilds the error from it); `name` is the class name.
 */
export class GridnodeError extends Error {
  readonly code: string

  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
    this.name = new.target.name
  }

  toJSON(): { code: string; message: string } {
    return { code: this.code, message: this.message }
  }
}

/** The peer sent something we cannot accept: close its stream, keep running. */
export class RemoteProtocolError extends GridnodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GN_REMOTE_PROTOCOL', message, options)
  }
}

/** We were about to send something invalid: a bug on our side. */
export class LocalProtocolError extends GridnodeError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('GN_LOCAL_PROTOCOL', message, options)
  }
}
