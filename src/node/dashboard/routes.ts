/**
 * The dashboard's routes on the local API, and the "why" routes it shares
 * with `gridnode why`:
 *
 *   POST /v1/dashboard/login-codes        (token) a one-time login code
 *   GET  /dashboard/login?code=…          spends it: session cookie, redirect to /dashboard
 *   GET  /dashboard, /dashboard/app.*     the page (needs the session to show anything)
 *   GET  /v1/dashboard/events             (token or session) server-sent events: hello, tick
 *   GET  /v1/jobs/:id/failures            failed tasks of a job with their errors
 *   GET  /v1/jobs/:id/why                 where the job's tasks stand, each member's reason
 *   GET  /v1/jobs/:id/tasks/:index/story  one task: where it stands, its story, members' reasons
 */
import type { IncomingMessage, ServerResponse } from 'node:http'
import type { MemberReason, TaskWhy } from '../../scheduler/index.ts'
import { ApiError, type ApiRequest, type ApiServer, type HttpApiRequest, STREAMED } from '../api.ts'
import { loadDashboardAssets } from './assets.ts'
import type { DashboardHub, DashboardSources } from './hub.ts'
import { CODE_TTL_MS, DashboardSessions, SESSION_TTL_MS } from './sessions.ts'

const HTML_HEADERS = {
  'content-type': 'text/html; charset=utf-8',
  'cache-control': 'no-store',
  'referrer-policy': 'no-referrer',
  'x-content-type-options': 'nosniff',
  // Only its own files, and its own API: nothing from the internet.
  'content-security-policy':
    "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'",
}

export function registerDashboardRoutes(
  api: ApiServer,
  hub: DashboardHub,
  src: DashboardSources,
  sessions = new DashboardSessions(),
): DashboardSessions {
  api.allowSessions((req) => sessions.fromRequest(req))
  api.route('POST', '/v1/dashboard/login-codes', (req) => {
    const code = sessions.code()
    const path = `/dashboard/login?code=${encodeURIComponent(code)}`
    return { url: `http://${req.host}${path}`, path, expiresInMs: CODE_TTL_MS }
  })
  api.httpRoute('GET', '/dashboard/login', (req) => login(req, sessions), { public: true })
  api.httpRoute('GET', '/dashboard', (req) => page(req, sessions), { public: true })
  api.httpRoute('GET', '/dashboard/', (req) => page(req, sessions), { public: true })
  api.httpRoute('GET', '/dashboard/:file', (req) => asset(req), { public: true })
  api.httpRoute('GET', '/v1/dashboard/events', (req) => {
    hub.open(req.res)
    return STREAMED
  })
  api.route('GET', '/v1/jobs/:id/failures', (req) => failures(req, src))
  api.route('GET', '/v1/jobs/:id/why', (req) => jobWhy(req, src))
  api.route('GET', '/v1/jobs/:id/tasks/:index/story', (req) => taskWhy(req, src))
  return sessions
}

function login(req: HttpApiRequest, sessions: DashboardSessions): typeof STREAMED {
  const id = sessions.redeem(req.query.get('code') ?? '')
  const res = req.res
  if (id === undefined) {
    res.writeHead(401, HTML_HEADERS)
    res.end(
      message('This login link was used already or has expired. Run <code>gridnode dashboard</code> again.'),
    )
    return STREAMED
  }
  const name = DashboardSessions.cookieName(req.raw)
  res.writeHead(303, {
    location: '/dashboard',
    'cache-control': 'no-store',
    'referrer-policy': 'no-referrer',
    'set-cookie': `${name}=${id}; HttpOnly; SameSite=Strict; Path=/; Max-Age=${SESSION_TTL_MS / 1000}`,
  })
  res.end()
  return STREAMED
}

function page(req: HttpApiRequest, sessions: DashboardSessions): Promise<typeof STREAMED> | typeof STREAMED {
  if (!sessions.fromRequest(req.raw)) {
    req.res.writeHead(401, HTML_HEADERS)
    req.res.end(message('Not logged in. Run <code>gridnode dashboard</code> and open the address it prints.'))
    return STREAMED
  }
  return serve(req.res, 'index.html')
}

async function asset(req: HttpApiRequest): Promise<typeof STREAMED> {
  return serve(req.res, req.params.file)
}

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
}

async function serve(res: ServerResponse, name: string): Promise<typeof STREAMED> {
  const files = await loadDashboardAssets()
  const body = files.get(name)
  if (body === undefined) throw new ApiError(404, 'GN_NOT_FOUND', `no dashboard file ${name}`)
  const type = TYPES[name.split('.').pop() ?? ''] ?? 'application/octet-stream'
  res.writeHead(200, {
    ...(name.endsWith('.html') ? HTML_HEADERS : {}),
    'content-type': type,
    'content-length': body.byteLength,
    'cache-control': 'no-store',
  })
  res.end(body)
  return STREAMED
}

function message(html: string): string {
  return `<!doctype html><meta charset="utf-8"><title>gridnode</title><p style="font:16px system-ui;margin:3em">${html}</p>`
}

function jobOf(req: ApiRequest, src: DashboardSources) {
  const job = src.driver.hub.store.job(req.params.id)
  if (!job)
    throw new ApiError(
      404,
      'GN_NO_SUCH_JOB',
      `no job ${req.params.id} on this node (gridnode jobs lists them)`,
    )
  return job
}

/**
 * A job's failed tasks: the first `limit` (at most 1000), each error cut to
 * `errorChars` (default 2000; the page asks for a line, the task's story has
 * it whole), so a job with a thousand long stack traces stays a small answer.
 */
function failures(req: ApiRequest, src: DashboardSources) {
  const job = jobOf(req, src)
  const limit = bounded(req.query.get('limit'), 1000, 1, 1000)
  const chars = bounded(req.query.get('errorChars'), 2000, 0, 2000)
  const a = src.activity.jobs.get(job.id)
  if (a !== undefined)
    return {
      job: job.id,
      total: a.failuresTotal,
      failures: a.failures.slice(0, limit).map((f) => ({ ...f, error: f.error.slice(0, chars) })),
    }
  // A job from before this start: read its failures from the store.
  const stored = src.driver.hub.store.results(job.id, 0, Number.MAX_SAFE_INTEGER).filter((r) => !r.ok)
  return {
    job: job.id,
    total: stored.length,
    failures: stored.slice(0, limit).map((r) => ({
      index: r.index,
      attempt: null,
      node: r.ranOn,
      status: 'failed',
      error: (r.error ?? '').slice(0, chars),
      at: null,
    })),
  }
}

function bounded(raw: string | null, fallback: number, min: number, max: number): number {
  const n = raw === null || raw === '' ? Number.NaN : Number(raw)
  return Number.isInteger(n) ? Math.min(max, Math.max(min, n)) : fallback
}

/** Members this node knew whose adverts stopped (or never came): they cannot take anything now. */
function offline(src: DashboardSources, inView: Set<string>): MemberReason[] {
  const now = Date.now()
  const out: MemberReason[] = []
  for (const m of src.membership?.list().members ?? []) {
    if (inView.has(m.peer)) continue
    const heard = src.activity.lastSeen.get(m.peer)
    const ago = heard !== undefined ? now - heard : m.lastSeenMs
    out.push(
      ago === null
        ? { peer: m.peer, canTake: false, kind: 'never-seen', reason: 'never seen by this node' }
        : {
            peer: m.peer,
            canTake: false,
            kind: 'offline',
            reason: `offline: last heard ${Math.round(ago / 1000)} s ago`,
          },
    )
  }
  return out
}

function withOffline(src: DashboardSources, members: MemberReason[]): MemberReason[] {
  if (members.length === 0) return members
  return [...members, ...offline(src, new Set(members.map((m) => m.peer)))]
}

function jobWhy(req: ApiRequest, src: DashboardSources) {
  const job = jobOf(req, src)
  const live = job.status === 'running' ? src.driver.jobProgress(job.id) : undefined
  const members = job.status === 'running' ? withOffline(src, src.driver.memberReasons(job.spec)) : []
  return {
    job: job.id,
    name: job.name,
    status: job.status,
    total: job.total,
    done: live?.done ?? job.done,
    failed: live?.failed ?? job.failed,
    running: live?.running ?? 0,
    queued: live === undefined ? 0 : Math.max(0, job.total - live.done - live.failed - live.running),
    blocked: src.driver.hub.blockedReason(job.id),
    resources: job.spec.resources,
    kind: job.spec.work.kind,
    members,
  }
}

function taskWhy(req: ApiRequest, src: DashboardSources): TaskWhy & { stored?: unknown; status: string } {
  const job = jobOf(req, src)
  const index = Number(req.params.index)
  if (!Number.isInteger(index) || index < 0 || index >= job.total)
    throw new ApiError(
      404,
      'GN_NO_SUCH_TASK',
      `job ${job.id} has tasks 0 to ${job.total - 1}, not ${req.params.index}`,
    )
  const why = src.driver.why(job.id, index)
  const stored = src.driver.hub.store.results(job.id, index, 1).find((r) => r.index === index)
  return {
    ...why,
    status: job.status,
    members: withOffline(src, why.members),
    stored:
      stored === undefined
        ? undefined
        : { ok: stored.ok, error: stored.error, ranOn: stored.ranOn, durationMs: stored.durationMs },
  }
}

export type { IncomingMessage }
