import { type Logger, pino } from 'pino'
import pretty from 'pino-pretty'
import type { NodeConfig } from './config/schema.ts'

export type { Logger }

/** JSON lines are written in chunks of this many bytes, or every FLUSH_MS, whichever comes first. */
const BUFFER_BYTES = 4096
const FLUSH_MS = 100

/**
 * Logs go to stderr, so stdout stays free for what a command prints. JSON lines are buffered:
 * a write per line cost ~25 us, as much as the rest of a small job's bookkeeping; a line waits
 * at most FLUSH_MS, and whatever is buffered is written synchronously when the process exits
 * (a kill -9 loses at most that window).
 */
export function createLogger(
  config: Pick<NodeConfig, 'logLevel' | 'logFormat'>,
  bindings: Record<string, unknown> = {},
): Logger {
  if (config.logFormat === 'pretty') {
    const stream = pretty({
      destination: 2,
      colorize: process.stderr.isTTY,
      ignore: 'pid,hostname',
      translateTime: 'HH:MM:ss.l',
      sync: true,
    })
    return pino({ level: config.logLevel, base: bindings }, stream)
  }
  // Buffered, but written synchronously when written: an asynchronous write still in flight when
  // the process exits is lost (sonic-boom's flushSync leaves it out), and with it the last lines
  // before a stop (a daemon stopped right after starting lost its `ready` line).
  const stream = pino.destination({ dest: 2, sync: true, minLength: BUFFER_BYTES })
  setInterval(() => flushQuietly(() => stream.flush()), FLUSH_MS).unref()
  process.once('exit', () => flushQuietly(() => stream.flushSync()))
  return pino({ level: config.logLevel, base: bindings }, stream)
}

/** A closed stderr (the reader went away) must not take the daemon down with it. */
function flushQuietly(flush: () => void): void {
  try {
    flush()
  } catch {
    // nothing to do: the lines have nowhere to go
  }
}
