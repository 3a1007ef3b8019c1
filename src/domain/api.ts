/**
 * The control API's shapes: what the daemon's HTTP routes answer and the
 * client reads (src/node/job-routes.ts writes them, src/client decodes them).
 * One declaration for both ends, so a field renamed on one side fails the
 * typecheck on the other.
 */
import type { OutputFile, Resources } from './types.ts'

/** A job as `GET /jobs` and `GET /jobs/:id` describe it. */
export interface JobSummary {
  id: string
  name: string
  status: 'running' | 'done' | 'failed' | 'cancelled'
  total: number
  done: number
  failed: number
  running: number
  nodes: number
  /** Backup copies of slow tasks run on another node (first result wins); known while the owner remembers the job. */
  backups?: number
  createdAt: number
  finishedAt: number | null
  blocked: string
  /** A human description: the export and bundle, or the command line. */
  work: string
  /** What the tasks run: a function export, a command, or nothing (noop). */
  kind?: 'function' | 'command' | 'noop'
  resources: Resources
}

/** A job's counts as the event stream sends them. */
export interface Progress {
  job: string
  total: number
  done: number
  failed: number
  running: number
  /** Distinct nodes that returned results so far. */
  nodes: number
}

/** How a job ended, as its stream's last event says. */
export type JobEndStatus = 'done' | 'failed' | 'cancelled'

/** One task's result as the results routes and the event stream send it (value: base64 of its encoding). */
export interface WireResult {
  index: number
  ok: boolean
  value: string | null
  error: string | null
  stack: string | null
  ranOn: string
  durationMs: number
  outputs?: OutputFile[]
}
