/**
 * How `map`, `run` and `results` print a job's results.
 *
 * - `--json`: one JSON line per result as it completes: `{"index", "value"}`
 *   or `{"index", "error"}` for function jobs; `{"index", "exitCode",
 *   "stdout", "stderr"}` (plus `"error"` when it failed, `"stdoutTruncated":
 *   true` when stdout was cut at the cap) for command jobs. A cut stdout is
 *   also named on stderr, in both modes.
 * - otherwise, in input order: one JSON value per line for function jobs,
 *   each command's stdout as it is for command jobs. A failed task prints
 *   nothing there; its error goes to stderr at once, naming its input line.
 *
 * Values JSON cannot hold are printed in the forms of toJsonSafe.
 */
import type { Writable } from 'node:stream'
import type { TaskError } from '../src/client/errors.ts'
import type { TaskResultOf } from '../src/client/job.ts'
import { toJsonSafe } from '../src/client/json-safe.ts'

export type OutputMode = 'values' | 'command'

export interface PrinterOptions {
  json: boolean
  mode: OutputMode
  out: Writable
  /** For stderr lines: the input line number of each index, when known. */
  lines?: number[]
  /** Prints one line on stderr (through the progress bar when one is up). */
  log: (line: string) => void
  /** The job's stdout cap in bytes, to name it when a command's output was cut. */
  maxOutput?: number
}

interface CommandValue {
  exitCode: number
  stdout: string
  stderr: string
  /** The command wrote more than the job's output cap (`--max-output`); stdout holds its first part. */
  stdoutTruncated?: boolean
}

export class ResultPrinter {
  private readonly o: PrinterOptions
  private readonly pending = new Map<number, TaskResultOf<unknown>>()
  private next = 0
  failed = 0
  printed = 0
  /** Command tasks whose stdout was cut at the cap. */
  truncated = 0

  constructor(o: PrinterOptions) {
    this.o = o
  }

  add(r: TaskResultOf<unknown>): void {
    if (this.o.mode === 'command' && (r.value as CommandValue | undefined)?.stdoutTruncated) {
      this.truncated++
      const cap = this.o.maxOutput === undefined ? '' : ` at ${this.o.maxOutput} bytes`
      this.o.log(
        `gridnode: task ${r.index}${this.where(r.index)}: stdout was cut${cap} (--max-output raises the cap)`,
      )
    }
    if (r.error) {
      this.failed++
      if (!this.o.json)
        this.o.log(`gridnode: task ${r.index}${this.where(r.index)} failed: ${r.error.reason}`)
    }
    if (this.o.json) {
      this.write(`${JSON.stringify(this.jsonLine(r))}\n`)
      return
    }
    this.pending.set(r.index, r)
    this.flushReady()
  }

  /** Prints what is still held back behind missing results (a cancelled job), in order. */
  end(): void {
    const rest = [...this.pending.keys()].sort((a, b) => a - b)
    for (const i of rest) this.print(this.pending.get(i)!)
    this.pending.clear()
  }

  private flushReady(): void {
    while (this.pending.has(this.next)) {
      this.print(this.pending.get(this.next)!)
      this.pending.delete(this.next)
      this.next++
    }
  }

  private print(r: TaskResultOf<unknown>): void {
    if (r.error) return
    if (this.o.mode === 'command') this.write((r.value as CommandValue | undefined)?.stdout ?? '')
    else this.write(`${JSON.stringify(toJsonSafe(r.value))}\n`)
  }

  private jsonLine(r: TaskResultOf<unknown>): object {
    if (this.o.mode === 'values') {
      return r.error
        ? { index: r.index, error: r.error.reason }
        : { index: r.index, value: toJsonSafe(r.value) }
    }
    if (r.error) return { index: r.index, ...commandFailure(r.error), error: r.error.reason }
    const v = r.value as CommandValue
    const line = { index: r.index, exitCode: v.exitCode, stdout: v.stdout, stderr: v.stderr }
    return v.stdoutTruncated ? { ...line, stdoutTruncated: true } : line
  }

  private where(index: number): string {
    const line = this.o.lines?.[index]
    return line === undefined ? '' : ` (input line ${line})`
  }

  private write(text: string): void {
    if (text === '') return
    this.printed++
    this.o.out.write(text)
  }
}

/**
 * What a failed command's error message tells: "command exited with code N"
 * and the tail of its stderr (the executor keeps no more of a failed command).
 */
export function commandFailure(e: TaskError): { exitCode: number | null; stdout: string; stderr: string } {
  const code = /^command exited with code (\d+)/.exec(e.reason)
  const tail = /\n--- (?:last \d+ lines of )?stderr ---\n([\s\S]*)$/.exec(e.reason)
  return { exitCode: code ? Number(code[1]) : null, stdout: '', stderr: tail ? `${tail[1]}\n` : '' }
}
