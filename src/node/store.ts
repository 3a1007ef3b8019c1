/**
 * The owner's job store: every job submitted here, its tasks and their
 * outcomes, in node:sqlite (WAL) inside the data dir. A result is written
 * before it is acknowledged, so a kill -9 of the owner loses no accepted
 * result, and a restarted owner lists past jobs and resumes unfinished ones.
 */
import { DatabaseSync, type StatementSync } from 'node:sqlite'
import type { JobSpec, JobStatus, OutputFile, TaskInput, TaskResult } from '../scheduler/types.ts'
import { parseBlobRef } from './files/big-values.ts'

export interface JobRecord {
  id: string
  name: string
  spec: JobSpec
  total: number
  status: JobStatus
  createdAt: number
  finishedAt: number | null
  done: number
  failed: number
  /** Distinct nodes that ran the stored results. */
  nodes: number
  blocked: string
}

export interface StoredResult {
  index: number
  ok: boolean
  value: Uint8Array | null
  error: string | null
  stack: string | null
  ranOn: string
  durationMs: number
  /** Output files the task brought back (their bytes are in the owner's blob store). */
  outputs?: OutputFile[]
}

const SCHEMA = `
CREATE TABLE IF NOT EXISTS jobs (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  spec TEXT NOT NULL,
  total INTEGER NOT NULL,
  status TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  finished_at INTEGER
);
CREATE TABLE IF NOT EXISTS tasks (
  job TEXT NOT NULL,
  idx INTEGER NOT NULL,
  input BLOB NOT NULL,
  deps TEXT NOT NULL,
  PRIMARY KEY (job, idx)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS results (
  job TEXT NOT NULL,
  idx INTEGER NOT NULL,
  ok INTEGER NOT NULL,
  value BLOB,
  error TEXT,
  stack TEXT,
  ran_on TEXT NOT NULL,
  duration_ms REAL NOT NULL,
  PRIMARY KEY (job, idx)
) WITHOUT ROWID;
`

/** node:sqlite's `errcode` for a duplicate primary key (SQLITE_CONSTRAINT_PRIMARYKEY). */
const SQLITE_CONSTRAINT_PRIMARYKEY = 1555

/** createJob with an id already stored. */
export class JobExistsError extends Error {
  readonly id: string
  constructor(id: string) {
    super(`a job ${id} exists already on this node`)
    this.name = 'JobExistsError'
    this.id = id
  }
}

const INSERT_TASKS = 'INSERT INTO tasks (job, idx, input, deps) VALUES'
/** OR IGNORE: a task already stored keeps its first outcome. */
const INSERT_RESULTS =
  'INSERT OR IGNORE INTO results (job, idx, ok, value, error, stack, ran_on, duration_ms, outputs) VALUES'
/**
 * Rows written by one statement: one run per 64 rows cost about two thirds of one run per row
 * (node:sqlite binds and steps once instead of 64 times). 64 x 9 parameters is far below
 * SQLite's limit of 32,766.
 */
const ROWS_PER_INSERT = 64

/** `(?, ?, ?), (?, ?, ?)` for `n` rows of `columns`. */
function rows(n: number, columns: number): string {
  const row = `(${Array(columns).fill('?').join(', ')})`
  return Array(n).fill(row).join(', ')
}

type SqlValue = string | number | Uint8Array | null

/**
 * Writes `items` with the `many`-row statement while ROWS_PER_INSERT remain, then row by row.
 * In order, so within one call the first of two rows with the same key is the one kept.
 */
function inChunks<T>(
  items: readonly T[],
  many: StatementSync,
  one: StatementSync,
  values: (item: T, out: SqlValue[]) => void,
): void {
  const out: SqlValue[] = []
  let i = 0
  for (; i + ROWS_PER_INSERT <= items.length; i += ROWS_PER_INSERT) {
    out.length = 0
    for (let k = i; k < i + ROWS_PER_INSERT; k++) values(items[k], out)
    many.run(...out)
  }
  for (; i < items.length; i++) {
    out.length = 0
    values(items[i], out)
    one.run(...out)
  }
}

export class JobStore {
  private readonly db: DatabaseSync
  private readonly stmts: Record<string, StatementSync>

  constructor(path: string) {
    this.db = new DatabaseSync(path)
    // WAL + NORMAL: a commit survives a crash of the process (kill -9) at once; a power cut may
    // lose the last commits, whose tasks are then simply run again when the owner resumes the job.
    // FULL would put an fsync on every submit and every result batch (milliseconds each).
    // EXCLUSIVE: only this daemon opens its store (repo.lock sees to that), so SQLite takes its
    // locks once instead of around every transaction and keeps the WAL index in memory: 12 fcntl
    // calls fewer per single-task job, about a fifth of its store time. Another process (the
    // sqlite3 shell) can read the file once the daemon is stopped.
    this.db.exec('PRAGMA locking_mode = EXCLUSIVE')
    this.db.exec('PRAGMA journal_mode = WAL; PRAGMA synchronous = NORMAL; PRAGMA busy_timeout = 5000;')
    this.db.exec(SCHEMA)
    const columns = this.db.prepare('PRAGMA table_info(results)').all() as Array<{ name: string }>
    if (!columns.some((c) => c.name === 'outputs'))
      this.db.exec('ALTER TABLE results ADD COLUMN outputs TEXT')
    this.stmts = {
      insertJob: this.db.prepare(
        'INSERT INTO jobs (id, name, spec, total, status, created_at) VALUES (?, ?, ?, ?, ?, ?)',
      ),
      insertTask: this.db.prepare(`${INSERT_TASKS} ${rows(1, 4)}`),
      insertTasks: this.db.prepare(`${INSERT_TASKS} ${rows(ROWS_PER_INSERT, 4)}`),
      insertResult: this.db.prepare(`${INSERT_RESULTS} ${rows(1, 9)}`),
      insertResults: this.db.prepare(`${INSERT_RESULTS} ${rows(ROWS_PER_INSERT, 9)}`),
      finishJob: this.db.prepare('UPDATE jobs SET status = ?, finished_at = ? WHERE id = ?'),
      job: this.db.prepare('SELECT * FROM jobs WHERE id = ?'),
      jobs: this.db.prepare('SELECT * FROM jobs ORDER BY created_at DESC LIMIT ?'),
      unfinished: this.db.prepare("SELECT * FROM jobs WHERE status = 'running' ORDER BY created_at"),
      counts: this.db.prepare(
        'SELECT COALESCE(SUM(ok), 0) AS done, COUNT(*) - COALESCE(SUM(ok), 0) AS failed, COUNT(DISTINCT ran_on) AS nodes FROM results WHERE job = ?',
      ),
      tasks: this.db.prepare('SELECT idx, input, deps FROM tasks WHERE job = ? ORDER BY idx'),
      results: this.db.prepare('SELECT * FROM results WHERE job = ? AND idx >= ? ORDER BY idx LIMIT ?'),
      prunable: this.db.prepare(
        "SELECT id FROM jobs WHERE status != 'running' AND COALESCE(finished_at, created_at) < ? ORDER BY created_at",
      ),
      outputs: this.db.prepare('SELECT idx, outputs FROM results WHERE job = ? AND outputs IS NOT NULL'),
      allOutputs: this.db.prepare('SELECT outputs FROM results WHERE outputs IS NOT NULL'),
      inputRefs: this.db.prepare('SELECT input FROM tasks WHERE length(input) = 48'),
      deleteJob: this.db.prepare('DELETE FROM jobs WHERE id = ?'),
      deleteTasks: this.db.prepare('DELETE FROM tasks WHERE job = ?'),
      deleteResults: this.db.prepare('DELETE FROM results WHERE job = ?'),
    }
  }

  /** True once close() ran: writes fail from then on, and nobody should retry them. */
  get closed(): boolean {
    return !this.db.isOpen
  }

  close(): void {
    if (this.db.isOpen) this.db.close()
  }

  /**
   * Records a new job and all its tasks in one transaction, before the scheduler sees it.
   * Throws JobExistsError when a job with this id is stored already (nothing is written).
   */
  createJob(spec: JobSpec, name: string, tasks: TaskInput[], createdAt: number): void {
    this.transaction(() => {
      try {
        this.stmts.insertJob.run(spec.id, name, JSON.stringify(spec), tasks.length, 'running', createdAt)
      } catch (err) {
        // The primary key says so: no lookup before every insert.
        if ((err as { errcode?: number }).errcode === SQLITE_CONSTRAINT_PRIMARYKEY)
          throw new JobExistsError(spec.id)
        throw err
      }
      inChunks(tasks, this.stmts.insertTasks, this.stmts.insertTask, (t, out) =>
        out.push(spec.id, t.index, t.input, JSON.stringify(t.deps)),
      )
    })
  }

  /** Writes accepted outcomes; a task already stored keeps its first outcome. */
  saveResults(results: TaskResult[]): void {
    this.transaction(() => this.insertResults(results))
  }

  /**
   * Outcomes and finished jobs in one transaction: all of it is written, or
   * (on a throw, e.g. SQLITE_FULL) none of it.
   */
  saveBatch(results: TaskResult[], finished: Array<{ id: string; status: JobStatus; at: number }>): void {
    this.transaction(() => {
      this.insertResults(results)
      for (const f of finished) this.stmts.finishJob.run(f.status, f.at, f.id)
    })
  }

  private insertResults(results: TaskResult[]): void {
    inChunks(results, this.stmts.insertResults, this.stmts.insertResult, (r, out) => {
      const o = r.outcome
      const ok = o.status === 'ok'
      out.push(
        r.job,
        r.index,
        ok ? 1 : 0,
        ok ? o.value : null,
        ok ? null : o.error,
        !ok && 'stack' in o ? (o.stack ?? null) : null,
        r.ranOn,
        o.durationMs,
        ok && o.outputs && o.outputs.length > 0 ? JSON.stringify(o.outputs) : null,
      )
    })
  }

  finishJob(id: string, status: JobStatus, at: number): void {
    this.stmts.finishJob.run(status, at, id)
  }

  job(id: string): JobRecord | undefined {
    const row = this.stmts.job.get(id) as Row | undefined
    return row && this.toRecord(row)
  }

  jobs(limit = 100): JobRecord[] {
    return (this.stmts.jobs.all(limit) as unknown as Row[]).map((r) => this.toRecord(r))
  }

  unfinishedJobs(): JobRecord[] {
    return (this.stmts.unfinished.all() as unknown as Row[]).map((r) => this.toRecord(r))
  }

  tasks(job: string): TaskInput[] {
    return (this.stmts.tasks.all(job) as Array<{ idx: number; input: Uint8Array; deps: string }>).map(
      (t) => ({
        index: t.idx,
        input: t.input,
        deps: JSON.parse(t.deps) as number[],
      }),
    )
  }

  /** Stored outcomes from index `from` on, in index order. */
  results(job: string, from = 0, limit = 10_000): StoredResult[] {
    return (this.stmts.results.all(job, from, limit) as unknown as ResultRow[]).map((r) => ({
      index: r.idx,
      ok: r.ok === 1,
      value: r.value,
      error: r.error,
      stack: r.stack,
      ranOn: r.ran_on,
      durationMs: r.duration_ms,
      ...(r.outputs ? { outputs: JSON.parse(r.outputs) as OutputFile[] } : {}),
    }))
  }

  /** The outputs of a job's tasks that have some. */
  outputsOf(job: string): Array<{ index: number; outputs: OutputFile[] }> {
    return (this.stmts.outputs.all(job) as Array<{ idx: number; outputs: string }>).map((r) => ({
      index: r.idx,
      outputs: JSON.parse(r.outputs) as OutputFile[],
    }))
  }

  /** Hashes of task inputs stored as blob references (src/node/files/big-values.ts). */
  inputRefs(): string[] {
    const out: string[] = []
    for (const r of this.stmts.inputRefs.all() as Array<{ input: Uint8Array }>) {
      const ref = parseBlobRef(r.input)
      if (ref !== undefined) out.push(ref.sha256)
    }
    return out
  }

  /** Every output hash the store refers to (kept out of the blob cache's eviction). */
  outputHashes(): Set<string> {
    const out = new Set<string>()
    for (const r of this.stmts.allOutputs.all() as Array<{ outputs: string }>)
      for (const f of JSON.parse(r.outputs) as OutputFile[]) out.add(f.sha256)
    return out
  }

  /**
   * Deletes finished jobs (done, failed, cancelled) that finished before
   * `before` (ms since the epoch), with their tasks and results. Running jobs
   * are never pruned. Returns the ids removed.
   */
  pruneJobs(before: number): string[] {
    const ids = (this.stmts.prunable.all(before) as Array<{ id: string }>).map((r) => r.id)
    this.transaction(() => {
      for (const id of ids) {
        this.stmts.deleteResults.run(id)
        this.stmts.deleteTasks.run(id)
        this.stmts.deleteJob.run(id)
      }
    })
    return ids
  }

  private toRecord(row: Row): JobRecord {
    const counts = this.stmts.counts.get(row.id) as { done: number; failed: number; nodes: number }
    return {
      id: row.id,
      name: row.name,
      spec: JSON.parse(row.spec) as JobSpec,
      total: row.total,
      status: row.status as JobStatus,
      createdAt: row.created_at,
      finishedAt: row.finished_at,
      done: counts.done,
      failed: counts.failed,
      nodes: counts.nodes,
      blocked: '',
    }
  }

  private transaction(fn: () => void): void {
    this.db.exec('BEGIN')
    try {
      fn()
      this.db.exec('COMMIT')
    } catch (err) {
      try {
        if (this.db.isTransaction) this.db.exec('ROLLBACK')
      } catch {
        // SQLite may already have rolled back (a full disk can do that); the first error is the one to report.
      }
      throw err
    }
  }
}

interface Row {
  id: string
  name: string
  spec: string
  total: number
  status: string
  created_at: number
  finished_at: number | null
}

interface ResultRow {
  job: string
  idx: number
  ok: number
  value: Uint8Array | null
  error: string | null
  stack: string | null
  ran_on: string
  duration_ms: number
  outputs: string | null
}
