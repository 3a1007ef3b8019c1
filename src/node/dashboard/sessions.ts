/**
 * Dashboard logins without the API token in a URL: `gridnode dashboard`
 * (holding the token) asks for a one-time code; the browser opens
 * /dashboard/login?code=…, which spends the code, sets an HttpOnly,
 * SameSite=Strict session cookie and redirects to /dashboard. The code in
 * the browser's history is then worthless; the token never leaves the data dir.
 */
import { randomBytes, timingSafeEqual } from 'node:crypto'
import type { IncomingMessage } from 'node:http'

export const CODE_TTL_MS = 60_000
export const SESSION_TTL_MS = 12 * 3600_000
const MAX_CODES = 100
const MAX_SESSIONS = 1000

export class DashboardSessions {
  private readonly codes = new Map<string, number>()
  private readonly sessions = new Map<string, number>()
  private readonly now: () => number

  constructor(now: () => number = Date.now) {
    this.now = now
  }

  /** A new one-time login code, valid CODE_TTL_MS. */
  code(): string {
    this.sweep(this.codes)
    if (this.codes.size >= MAX_CODES) this.codes.delete(this.codes.keys().next().value!)
    const code = randomBytes(24).toString('base64url')
    this.codes.set(code, this.now() + CODE_TTL_MS)
    return code
  }

  /** Spends a code: a new session id, or undefined when the code is unknown, used or expired. */
  redeem(code: string): string | undefined {
    const until = this.codes.get(code)
    this.codes.delete(code)
    if (until === undefined || until < this.now()) return undefined
    this.sweep(this.sessions)
    if (this.sessions.size >= MAX_SESSIONS) this.sessions.delete(this.sessions.keys().next().value!)
    const id = randomBytes(32).toString('base64url')
    this.sessions.set(id, this.now() + SESSION_TTL_MS)
    return id
  }

  valid(id: string | undefined): boolean {
    if (id === undefined) return false
    for (const [known, until] of this.sessions) {
      if (known.length === id.length && timingSafeEqual(Buffer.from(known), Buffer.from(id)))
        return until >= this.now()
    }
    return false
  }

  /** The cookie's name: per API port, since browsers share cookies across the ports of one host. */
  static cookieName(req: IncomingMessage): string {
    return `gridnode_${req.socket.localPort ?? 0}`
  }

  fromRequest(req: IncomingMessage): boolean {
    return this.valid(cookie(req.headers.cookie, DashboardSessions.cookieName(req)))
  }

  private sweep(m: Map<string, number>): void {
    const now = this.now()
    for (const [k, until] of m) if (until < now) m.delete(k)
  }
}

export function cookie(header: string | undefined, name: string): string | undefined {
  for (const part of (header ?? '').split(';')) {
    const i = part.indexOf('=')
    if (i > 0 && part.slice(0, i).trim() === name) return part.slice(i + 1).trim()
  }
  return undefined
}
