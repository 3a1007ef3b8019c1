/** The CLI's result printer (cli/job-output.ts): input order, --json lines, command output, failures. */
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { commandFailure, ResultPrinter } from '../../cli/job-output.ts'
import { TaskError } from '../../src/client/errors.ts'
import type { TaskResultOf } from '../../src/client/job.ts'

function printer(o: { json: boolean; mode: 'values' | 'command'; lines?: number[] }) {
  const out = new PassThrough()
  let text = ''
  out.on('data', (d: Buffer) => {
    text += d.toString()
  })
  const log: string[] = []
  const p = new ResultPrinter({ ...o, out, log: (l) => log.push(l) })
  return { p, log, text: () => text }
}

const ok = (index: number, value: unknown): TaskResultOf<unknown> => ({ index, value })
const bad = (index: number, reason: string): TaskResultOf<unknown> => ({
  index,
  error: new TaskError(index, reason),
})

describe('ResultPrinter', () => {
  it('prints values in input order, holding back those that arrive early', () => {
    const { p, text } = printer({ json: false, mode: 'values' })
    p.add(ok(2, 'c'))
    p.add(ok(1, 'b'))
    expect(text()).toBe('')
    p.add(ok(0, 'a'))
    expect(text()).toBe('"a"\n"b"\n"c"\n')
  })

  it('skips a failed task in order, logging it at once with its input line', () => {
    const { p, log, text } = printer({ json: false, mode: 'values', lines: [1, 3, 4] })
    p.add(ok(2, 9n))
    p.add(bad(1, 'odd input'))
    expect(log).toEqual(['gridnode: task 1 (input line 3) failed: odd input'])
    p.add(ok(0, undefined))
    expect(text()).toBe('null\n{"$bigint":"9"}\n')
    expect(p.failed).toBe(1)
  })

  it('prints what is held behind a gap when the job ends (a cancelled job)', () => {
    const { p, text } = printer({ json: false, mode: 'values' })
    p.add(ok(3, 3))
    p.add(ok(1, 1))
    p.end()
    expect(text()).toBe('1\n3\n')
  })

  it('prints one JSON line per result at once with --json', () => {
    const { p, log, text } = printer({ json: true, mode: 'values' })
    p.add(ok(1, new Map([[1, 2]])))
    p.add(bad(0, 'boom'))
    expect(text()).toBe('{"index":1,"value":{"$map":[[1,2]]}}\n{"index":0,"error":"boom"}\n')
    expect(log).toEqual([])
  })

  it("prints commands' stdout as it is, in order", () => {
    const { p, text } = printer({ json: false, mode: 'command' })
    p.add(ok(1, { exitCode: 0, stdout: 'second\n', stderr: '' }))
    p.add(ok(0, { exitCode: 0, stdout: 'first, no newline', stderr: 'noise' }))
    expect(text()).toBe('first, no newlinesecond\n')
  })

  it('gives index, exit code, stdout and stderr per command with --json, failures included', () => {
    const { p, text } = printer({ json: true, mode: 'command' })
    p.add(ok(0, { exitCode: 0, stdout: 'out\n', stderr: 'err\n', stdoutTruncated: false }))
    p.add(bad(1, 'command exited with code 3\n--- stderr ---\nno such file'))
    const [a, b] = text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(a).toEqual({ index: 0, exitCode: 0, stdout: 'out\n', stderr: 'err\n' })
    expect(b).toEqual({
      index: 1,
      exitCode: 3,
      stdout: '',
      stderr: 'no such file\n',
      error: 'command exited with code 3\n--- stderr ---\nno such file',
    })
  })
})

describe('commandFailure', () => {
  it('reads the exit code and the stderr tail from the executor message', () => {
    const e = new TaskError(0, 'command exited with code 2\n--- last 20 lines of stderr ---\na\nb')
    expect(commandFailure(e)).toEqual({ exitCode: 2, stdout: '', stderr: 'a\nb\n' })
  })

  it('has no exit code for a signal, a timeout or a missing command', () => {
    for (const m of [
      'command was killed by signal SIGKILL',
      'command timed out after 10 ms',
      'command not found: x',
    ])
      expect(commandFailure(new TaskError(0, m)).exitCode).toBeNull()
  })
})
