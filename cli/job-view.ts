/** Small formatting helpers for the job commands. */
import type { JobSummary } from '../src/client/grid.ts'
import { formatDuration } from '../src/client/progress.ts'

/** "7/10 done, 1 failed, 2 running" with the zero parts left out. */
export function taskCounts(j: JobSummary): string {
  const parts = [`${j.done}/${j.total} done`]
  if (j.failed > 0) parts.push(`${j.failed} failed`)
  if (j.running > 0) parts.push(`${j.running} running`)
  return parts.join(', ')
}

export function ago(ms: number): string {
  return ms < 1000 ? 'just now' : `${formatDuration(ms)} ago`
}

export function describeJob(j: JobSummary): string {
  const r = j.resources
  const per = [`${r.cpu} CPU`]
  if (r.gpu > 0) per.push(`${r.gpu} GPU`)
  if (r.memoryMB > 0) per.push(`${r.memoryMB} MB`)
  const ended =
    j.finishedAt === null
      ? ''
      : ` at ${new Date(j.finishedAt).toISOString()}, took ${took(j.finishedAt - j.createdAt)}`
  const lines = [
    ['job', j.id],
    ['name', j.name],
    ['status', `${j.status}${ended}`],
    ['tasks', `${taskCounts(j)}${nodesPart(j)}`],
    ['work', `${j.kind ?? 'function'}: ${j.work}`],
    ['per task', per.join(', ')],
    ['submitted', new Date(j.createdAt).toISOString()],
  ]
  if (j.backups)
    lines.push(['backups', `${j.backups} (copies of slow tasks run on another node; the first result wins)`])
  if (j.blocked) lines.push(['blocked', j.blocked])
  return lines.map(([k, v]) => `${k.padEnd(10)} ${v}`).join('\n')
}

/** " (results from 2 nodes so far)": "so far" only while the job runs. */
function nodesPart(j: JobSummary): string {
  if (j.nodes <= 0) return ''
  return ` (results from ${plural(j.nodes, 'node')}${j.status === 'running' ? ' so far' : ''})`
}

/** "1 node", "2 nodes", "0 nodes". */
export function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`
}

/** 46 ms, 3.2 s, 1m15s. */
export function took(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)} ms`
  if (ms < 60_000) return `${(ms / 1000).toFixed(1)} s`
  return formatDuration(ms)
}
