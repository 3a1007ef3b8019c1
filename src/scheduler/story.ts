/**
 * The owner's custody table as a table of legal moves, and each task's story:
 * every move (from → to) with its time, cause, attempt, node and a note (why
 * it was re-queued, how a run ended), as Dask's `story()` keeps it.
 *
 * Stories are kept per job in columns (typed arrays and interned strings), not
 * one object per move: a job of a million tasks makes about three million
 * moves, and objects would cost the daemon hundreds of MB. Each job's log is
 * bounded (STORY_MAX_ENTRIES); once full, later moves are counted, not kept.
 */
import type { OwnedState } from './job-table.ts'
import type { PeerKey } from './types.ts'

/**
 * Legal moves of an owner's task (custody.ts asserts every setState against it):
 *
 *   waiting → local (ready) | doubt (ready after a restore) | done, failed (restored outcome, failed dependency)
 *   local   → local (new attempt) | remote (handed off, stolen) | done, failed
 *   remote  → remote (stolen on) | local (re-queued, grant failed, reclaimed) | done, failed
 *   doubt   → remote (claimed by a lease) | local (grace over, reclaimed) | done, failed
 *   done, failed: final.
 */
export const LEGAL_MOVES: Readonly<Record<OwnedState, readonly OwnedState[]>> = {
  waiting: ['local', 'doubt', 'done', 'failed'],
  local: ['local', 'remote', 'done', 'failed'],
  remote: ['remote', 'local', 'done', 'failed'],
  doubt: ['remote', 'local', 'done', 'failed'],
  done: [],
  failed: [],
}

export function legalMove(from: OwnedState, to: OwnedState): boolean {
  return LEGAL_MOVES[from].includes(to)
}

/** One move of one task, as the API and `gridnode why` show it. */
export interface StoryEntry {
  /** Time of the event that caused the move (the driver's clock, ms). */
  at: number
  /** The cause id of that event (the daemon's logs carry the same id). */
  cause: string
  attempt: number
  from: OwnedState
  to: OwnedState
  /** remote: the new holder; local: this node; done/failed: where it ran. */
  node?: PeerKey
  /** remote → remote: the holder it was taken from. */
  fromNode?: PeerKey
  /** Why (re-queues), or how the run ended (final moves). */
  note?: string
}

/** Moves kept per job. */
export const STORY_MAX_ENTRIES = 2_000_000
/** Distinct notes kept per job (error messages); beyond it notes read "…". */
const MAX_NOTES = 10_000
const MAX_NOTE_CHARS = 300
const STATES: readonly OwnedState[] = ['waiting', 'local', 'remote', 'doubt', 'done', 'failed']
const STATE_CODE = new Map(STATES.map((s, i) => [s, i]))

/** Interned strings: id ↔ string. */
class Strings {
  readonly list: string[] = []
  private readonly ids = new Map<string, number>()
  id(s: string): number {
    let id = this.ids.get(s)
    if (id === undefined) {
      id = this.list.length
      this.list.push(s)
      this.ids.set(s, id)
    }
    return id
  }
}

/**
 * Room for a new job's first moves. Small enough for V8 to keep the columns on its heap (64 bytes
 * or less each): a job of 256 moves' room cost about 45 us to create, most of a single task's
 * scheduling; the columns double as moves come.
 */
const FIRST_MOVES = 8

/** One job's moves, in columns. */
export class JobStory {
  /** Moves not kept because the log was full. */
  dropped = 0
  private n = 0
  private index = new Int32Array(FIRST_MOVES)
  private at = new Float64Array(FIRST_MOVES)
  private attempt = new Float64Array(FIRST_MOVES)
  /** from * 8 + to */
  private move = new Uint8Array(FIRST_MOVES)
  private node = new Int32Array(FIRST_MOVES)
  private fromNode = new Int32Array(FIRST_MOVES)
  /** The cause without its `#n` sequence suffix (interned: a few distinct bases per job)… */
  private cause = new Int32Array(FIRST_MOVES)
  /** …and the suffix as a number (-1: none). One string per move would grow the table by one entry per event. */
  private causeSeq = new Float64Array(FIRST_MOVES)
  private note = new Int32Array(FIRST_MOVES)
  private readonly strings = new Strings()
  private notes = 0
  private readonly max: number

  constructor(max = STORY_MAX_ENTRIES) {
    this.max = max
  }

  get size(): number {
    return this.n
  }

  add(
    index: number,
    e: { at: number; cause: string; attempt: number; from: OwnedState; to: OwnedState },
    node: PeerKey | undefined,
    fromNode: PeerKey | undefined,
  ): void {
    if (this.n >= this.max) {
      this.dropped++
      return
    }
    if (this.n === this.index.length) this.grow()
    const i = this.n++
    this.index[i] = index
    this.at[i] = e.at
    this.attempt[i] = e.attempt
    this.move[i] = STATE_CODE.get(e.from)! * 8 + STATE_CODE.get(e.to)!
    this.node[i] = node === undefined ? -1 : this.strings.id(node)
    this.fromNode[i] = fromNode === undefined ? -1 : this.strings.id(fromNode)
    this.setCause(i, e.cause)
    this.note[i] = -1
  }

  /**
   * Causes are `<base>#<n in base 36>` (the driver numbers every event) or free text: the base is
   * interned and n kept as a number, so the text comes back exactly as it went in.
   */
  private setCause(i: number, cause: string): void {
    const hash = cause.lastIndexOf('#')
    if (hash >= 0 && hash < cause.length - 1 && cause.length - hash <= 11) {
      const suffix = cause.slice(hash + 1)
      const seq = Number.parseInt(suffix, 36)
      if (seq >= 0 && seq.toString(36) === suffix) {
        this.cause[i] = this.strings.id(cause.slice(0, hash))
        this.causeSeq[i] = seq
        return
      }
    }
    this.cause[i] = this.strings.id(cause)
    this.causeSeq[i] = -1
  }

  private causeOf(i: number): string {
    const base = this.strings.list[this.cause[i]]
    const seq = this.causeSeq[i]
    return seq < 0 ? base : `${base}#${seq.toString(36)}`
  }

  /** Adds a note (and, for final moves, the node it ran on) to the task's latest move. */
  annotate(index: number, note: string, node?: PeerKey): void {
    const i = this.n - 1
    if (i < 0 || this.index[i] !== index) return
    if (note !== '') {
      const text = note.length > MAX_NOTE_CHARS ? `${note.slice(0, MAX_NOTE_CHARS)}…` : note
      this.note[i] = this.notes < MAX_NOTES ? this.strings.id(text) : this.strings.id('…')
      this.notes++
    }
    if (node !== undefined) this.node[i] = this.strings.id(node)
  }

  /** The moves of one task, oldest first (a scan: for questions, not for the hot path). */
  of(index: number): StoryEntry[] {
    const out: StoryEntry[] = []
    const s = this.strings.list
    for (let i = 0; i < this.n; i++) {
      if (this.index[i] !== index) continue
      const m = this.move[i]
      const e: StoryEntry = {
        at: this.at[i],
        cause: this.causeOf(i),
        attempt: this.attempt[i],
        from: STATES[m >> 3],
        to: STATES[m & 7],
      }
      if (this.node[i] >= 0) e.node = s[this.node[i]]
      if (this.fromNode[i] >= 0) e.fromNode = s[this.fromNode[i]]
      if (this.note[i] >= 0) e.note = s[this.note[i]]
      out.push(e)
    }
    return out
  }

  private grow(): void {
    const size = Math.min(this.max, this.index.length * 2)
    const wider = <T extends Int32Array | Float64Array | Uint8Array>(a: T, make: (n: number) => T): T => {
      const b = make(size)
      b.set(a)
      return b
    }
    this.index = wider(this.index, (k) => new Int32Array(k))
    this.at = wider(this.at, (k) => new Float64Array(k))
    this.attempt = wider(this.attempt, (k) => new Float64Array(k))
    this.move = wider(this.move, (k) => new Uint8Array(k))
    this.node = wider(this.node, (k) => new Int32Array(k))
    this.fromNode = wider(this.fromNode, (k) => new Int32Array(k))
    this.cause = wider(this.cause, (k) => new Int32Array(k))
    this.causeSeq = wider(this.causeSeq, (k) => new Float64Array(k))
    this.note = wider(this.note, (k) => new Int32Array(k))
  }
}

/** Stories of finished jobs kept for questions: the newest first, within a budget of moves. */
export class FinishedStories {
  private readonly jobs = new Map<string, JobStory>()
  private total = 0
  private readonly budget: number

  constructor(budget = STORY_MAX_ENTRIES) {
    this.budget = budget
  }

  keep(job: string, story: JobStory): void {
    if (story.size > this.budget) return
    const old = this.jobs.get(job)
    if (old !== undefined) {
      this.jobs.delete(job)
      this.total -= old.size
    }
    this.jobs.set(job, story)
    this.total += story.size
    for (const [id, s] of this.jobs) {
      if (this.total <= this.budget) break
      this.jobs.delete(id)
      this.total -= s.size
    }
  }

  get(job: string): JobStory | undefined {
    return this.jobs.get(job)
  }
}
