/** `gridnode run`'s printer when a command's stdout was cut at the job's cap. */
import { PassThrough } from 'node:stream'
import { describe, expect, it } from 'vitest'
import { ResultPrinter } from '../../cli/job-output.ts'

function printer(json: boolean) {
  const out = new PassThrough()
  let text = ''
  out.on('data', (d: Buffer) => {
    text += d.toString()
  })
  const log: string[] = []
  const p = new ResultPrinter({ json, mode: 'command', out, log: (l) => log.push(l), maxOutput: 4096 })
  return { p, log, text: () => text }
}

const cut = { exitCode: 0, stdout: 'x'.repeat(4096), stderr: '', stdoutTruncated: true }

describe('a cut stdout', () => {
  it('is said on stderr, naming the cap', () => {
    const { p, log, text } = printer(false)
    p.add({ index: 0, value: cut })
    expect(text()).toBe('x'.repeat(4096))
    expect(log).toEqual(['gridnode: task 0: stdout was cut at 4096 bytes (--max-output raises the cap)'])
  })

  it('is "stdoutTruncated": true in --json, and absent when nothing was cut', () => {
    const { p, log, text } = printer(true)
    p.add({ index: 0, value: cut })
    p.add({ index: 1, value: { exitCode: 0, stdout: 'ok\n', stderr: '', stdoutTruncated: false } })
    const [a, b] = text()
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l))
    expect(a).toMatchObject({ index: 0, stdoutTruncated: true })
    expect(b).toEqual({ index: 1, exitCode: 0, stdout: 'ok\n', stderr: '' })
    expect(log).toHaveLength(1)
  })
})
