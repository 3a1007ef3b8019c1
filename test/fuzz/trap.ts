/**
 * Catches what must never happen while fuzzing: an unhandled promise
 * rejection or an uncaught exception anywhere in the process.
 */
export function trapStrays() {
  const strays: string[] = []
  const onRejection = (reason: unknown) => {
    strays.push(`unhandledRejection: ${(reason as Error)?.stack ?? String(reason)}`)
  }
  const onException = (err: Error) => {
    strays.push(`uncaughtException: ${err?.stack ?? String(err)}`)
  }
  return {
    strays,
    install() {
      process.on('unhandledRejection', onRejection)
      process.on('uncaughtException', onException)
    },
    uninstall() {
      process.off('unhandledRejection', onRejection)
      process.off('uncaughtException', onException)
    },
    /** Throws if anything stray happened so far. */
    check() {
      if (strays.length > 0) throw new Error(`stray errors while fuzzing:\n${strays.join('\n')}`)
    },
  }
}
