import { type Logger, pino } from 'pino'
import pretty from 'pino-pretty'
import type { NodeConfig } from './config/schema.ts'

export type { Logger }

/** Logs go to stderr, so stdout stays free for what a command prints. */
export function createLogger(
  config: Pick<NodeConfig, 'logLevel' | 'logFormat'>,
  bindings: Record<string, unknown> = {},
): Logger {
  const stream =
    config.logFormat === 'pretty'
      ? pretty({
          destination: 2,
          colorize: process.stderr.isTTY,
          ignore: 'pid,hostname',
          translateTime: 'HH:MM:ss.l',
          sync: true,
        })
      : pino.destination({ dest: 2, sync: false })
  return pino({ level: config.logLevel, base: bindings }, stream)
}
