/** What every command shares: exit codes, JSON vs human output, small table printing. */

export const EXIT = { ok: 0, failed: 1, usage: 2, noDaemon: 3 } as const

/** Thrown by a command to end with a given code and one line on stderr. */
export class ExitError extends Error {
  readonly code: number
  constructor(code: number, message: string) {
    super(message)
    this.code = code
  }
}

export function printJson(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value)}\n`)
}

/** Left-aligned columns, two spaces apart. */
export function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => (r[i] ?? '').length)))
  return rows
    .map((r) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]))).join('  '))
    .join('\n')
}

export function formatMB(mb: number | undefined): string {
  if (mb === undefined) return '?'
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GiB` : `${Math.round(mb)} MiB`
}

export function shortId(peerId: string): string {
  return peerId.length > 16 ? `${peerId.slice(0, 6)}…${peerId.slice(-6)}` : peerId
}

/** Options every client command takes. */
export interface ClientFlags {
  dataDir?: string
  json?: boolean
}
