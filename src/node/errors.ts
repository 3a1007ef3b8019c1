import { GridnodeError } from '../errors.ts'

export { NoDaemonError } from '../domain/errors.ts'

/** A flag or config value that cannot be used. The CLI prints it and exits 2. */
export class BadConfigError extends GridnodeError {
  constructor(message: string) {
    super('GN_BAD_CONFIG', message)
  }
}

/** Another daemon already runs on this data dir. */
export class DataDirLockedError extends GridnodeError {
  constructor(dataDir: string, pid: number) {
    super(
      'GN_DATA_DIR_LOCKED',
      `a gridnode daemon (pid ${pid}) already uses ${dataDir}; stop it or pass another --data-dir`,
    )
  }
}
