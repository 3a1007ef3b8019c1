/**
 * Inputs as text, the way the CLI takes them: JSON Lines for `map` (one JSON
 * value per line) and plain lines for `run` (one string per line, as GNU
 * parallel reads them). Blank lines are skipped in both; a line that is not
 * JSON is an error that names its line number, so it can be fixed.
 */
import { BadInputError } from './errors.ts'

export interface ParsedInputs<T> {
  values: T[]
  /** The 1-based line number each value came from (for messages). */
  lines: number[]
}

export function parseJsonLines(text: string, source = 'inputs'): ParsedInputs<unknown> {
  const values: unknown[] = []
  const lines: number[] = []
  splitLines(text).forEach((line, i) => {
    if (line.trim() === '') return
    try {
      values.push(JSON.parse(line))
    } catch (err) {
      const why = (err as Error).message.replace(/^JSON\.parse: /, '')
      throw new BadInputError(
        `${source} line ${i + 1} is not JSON (${why}): ${preview(line)}; put one JSON value per line, strings in double quotes`,
      )
    }
    lines.push(i + 1)
  })
  return { values, lines }
}

export function parsePlainLines(text: string): ParsedInputs<string> {
  const values: string[] = []
  const lines: number[] = []
  splitLines(text).forEach((line, i) => {
    if (line.trim() === '') return
    values.push(line)
    lines.push(i + 1)
  })
  return { values, lines }
}

function splitLines(text: string): string[] {
  const lines = text.split(/\r?\n/)
  if (lines.length > 0 && lines[lines.length - 1] === '') lines.pop()
  return lines
}

function preview(line: string): string {
  const s = line.length > 40 ? `${line.slice(0, 40)}…` : line
  return JSON.stringify(s)
}
