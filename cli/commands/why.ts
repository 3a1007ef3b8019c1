/**
 * `gridnode why <job> [index] [--json]`: why a job's tasks (or one task) are
 * not running: where it stands (waiting for dependencies, queued here behind
 * N tasks, held by a peer), each member's reason it cannot take it now, and
 * the task's story (every move with its time, attempt, node and cause id,
 * the same id as on the daemon's log lines).
 */
import type { Command } from 'commander'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { positiveNumber } from '../flags.ts'
import { type ClientFlags, printJson, shortId, table } from '../output.ts'

interface Reason {
  peer: string
  canTake: boolean
  kind: string
  reason: string
}

interface JobWhy {
  job: string
  name: string
  status: string
  total: number
  done: number
  failed: number
  running: number
  queued: number
  blocked: string
  resources: { cpu: number; gpu: number; memoryMB: number }
  kind: string
  members: Reason[]
}

interface Move {
  at: number
  cause: string
  attempt: number
  from: string
  to: string
  node?: string
  fromNode?: string
  note?: string
}

interface TaskWhy {
  job: string
  index: number
  status: string
  known: 'live' | 'finished' | 'unknown'
  state?: string
  attempt?: number
  holder?: string
  heldSince?: number
  waitingFor?: number[]
  queued?: { ahead: number; others: number }
  runningHere?: boolean
  story: Move[]
  storyDropped: number
  members: Reason[]
  stored?: { ok: boolean; error: string | null; ranOn: string; durationMs: number }
}

export function registerWhy(program: Command): void {
  program
    .command('why')
    .description("why a job's tasks (or one task) are not running, and a task's story")
    .argument('<job>', 'the job id (gridnode jobs lists them)')
    .argument('[index]', 'one task of the job (its index): where it stands and its story', (v) =>
      v === '0' ? 0 : positiveNumber(v),
    )
    .option('--data-dir <dir>', 'the daemon that owns the job (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print one JSON object')
    .action(async (job: string, index: number | undefined, opts: ClientFlags) => {
      const client = DaemonClient.open(opts)
      const id = encodeURIComponent(job)
      if (index === undefined) {
        const w = await client.request<JobWhy>('GET', `/v1/jobs/${id}/why`)
        if (opts.json) return printJson(w)
        return void process.stdout.write(jobText(w))
      }
      const w = await client.request<TaskWhy>('GET', `/v1/jobs/${id}/tasks/${index}/story`)
      if (opts.json) return printJson(w)
      process.stdout.write(taskText(w))
    })
}

function reasons(members: Reason[]): string {
  if (members.length === 0) return ''
  const rows = [['NODE', '', 'NOW']]
  members.forEach((m, i) => {
    rows.push([shortId(m.peer), i === 0 ? '(this node)' : '', m.reason])
  })
  return `${table(rows)}\n`
}

export function jobText(w: JobWhy): string {
  const r = w.resources
  let out = `job ${w.job} (${w.name}): ${w.status}; ${w.done} done, ${w.failed} failed, ${w.running} running, ${w.queued} not started, of ${w.total}\n`
  out += `each task needs ${r.cpu} CPU slot${r.cpu === 1 ? '' : 's'}, ${r.gpu} GPU, ${r.memoryMB} MB (${w.kind} tasks)\n`
  if (w.blocked) out += `blocked: ${w.blocked}\n`
  if (w.status !== 'running')
    return `${out}the job has ended; gridnode why ${w.job} <index> tells one task's story\n`
  const can = w.members.filter((m) => m.canTake).length
  out += `\n${can} of ${w.members.length} members could take one of its tasks right now:\n${reasons(w.members)}`
  out += `\ngridnode why ${w.job} <index> shows one task: where it is queued, and its story\n`
  return out
}

function where(w: TaskWhy): string {
  if (w.known === 'unknown' && w.stored === undefined)
    return `no story of it is kept here (the job ${w.status === 'running' ? 'is unknown to the scheduler' : 'ended before this daemon started, or its story was dropped'})`
  if (w.known !== 'live') {
    const s = w.stored
    if (s === undefined) return `finished (job ${w.status})`
    return `finished: ${s.ok ? 'ok' : `failed: ${oneLine(s.error ?? '')}`} on ${shortId(s.ranOn)} in ${Math.round(s.durationMs)} ms`
  }
  switch (w.state) {
    case 'waiting':
      return `waiting for its dependencies: tasks ${(w.waitingFor ?? []).join(', ')}`
    case 'local':
      return w.runningHere
        ? 'running on this node'
        : `queued on this node behind ${w.queued?.ahead ?? 0} tasks of its job (${w.queued?.others ?? 0} tasks of other jobs share the queue, served in turn)`
    case 'remote':
      return `held by ${shortId(w.holder ?? '?')} since ${time(w.heldSince ?? 0)} (queued or running there)`
    case 'doubt':
      return 'in doubt after this owner restarted: waiting for its holder to claim it, else it is re-queued'
    case 'done':
      return 'done'
    case 'failed':
      return `failed${w.stored?.error ? `: ${w.stored.error}` : ''}`
    default:
      return w.state ?? '?'
  }
}

/** Multi-line notes and errors (a command's output) on one line. */
function oneLine(text: string): string {
  return text.replace(/\s*\n\s*/g, ' | ')
}

function time(ms: number): string {
  return new Date(ms).toISOString().slice(11, 23)
}

export function taskText(w: TaskWhy): string {
  let out = `task ${w.index} of job ${w.job}: ${where(w)}${w.attempt !== undefined ? ` (attempt ${w.attempt})` : ''}\n`
  if (w.members.length > 0) out += `\nwho could take it now:\n${reasons(w.members)}`
  if (w.story.length > 0) {
    const rows = [['TIME', 'ATTEMPT', 'MOVE', 'NODE', 'WHY', 'CAUSE']]
    for (const e of w.story) {
      const node = `${e.fromNode ? `${shortId(e.fromNode)} → ` : ''}${e.node ? shortId(e.node) : ''}`
      rows.push([time(e.at), String(e.attempt), `${e.from} → ${e.to}`, node, oneLine(e.note ?? ''), e.cause])
    }
    out += `\nstory:\n${table(rows)}\n`
  }
  if (w.storyDropped > 0)
    out += `(${w.storyDropped} later moves of this job were not kept: its story log is full)\n`
  return out
}
