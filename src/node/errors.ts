import { GridnodeError } from '../errors.ts'

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

/** No daemon answers for this data dir. The CLI exits 3. */
export class NoDaemonError extends GridnodeError {
  constructor(dataDir: string, detail: string) {
    super(
      'GN_NO_DAEMON',
      `no gridnode daemon is running for data dir ${dataDir} (${detail}); start one with: gridnode start --data-dir ${dataDir}`,
    )
  }
}
