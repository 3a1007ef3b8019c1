/**
 * What a job's input files are doing before it is submitted, on the line the bar will take. The
 * first version hung this on the bar, which the CLI draws only once the job is submitted: every
 * step went to no listener (found by a review). Here the steps of a real Job-like emitter reach a
 * fake terminal, and the line is cleared when submission ends.
 */
import { EventEmitter } from 'node:events'
import { describe, expect, it } from 'vitest'
import { showInputSteps } from '../../cli/progress-bar.ts'
import type { InputFileStep } from '../../src/client/files.ts'

describe('showInputSteps', () => {
  it('rewrites one line per step, then clears it', () => {
    const job = new EventEmitter<{ inputs: [InputFileStep] }>()
    const written: string[] = []
    const stream = { columns: 80, write: (s: string) => written.push(s) > 0 }
    const done = showInputSteps(job as never, true, stream as never)
    job.emit('inputs', { file: 'big.bin', index: 0, count: 1, bytes: 2e8, step: 'hashing' })
    job.emit('inputs', { file: 'big.bin', index: 0, count: 1, bytes: 2e8, step: 'uploading' })
    done()
    expect(written).toEqual([
      '\r\x1b[2Kinput file: big.bin (200.0 MB), hashing…',
      '\r\x1b[2Kinput file: big.bin (200.0 MB), uploading to the daemon…',
      '\r\x1b[2K',
    ])
    expect(job.listenerCount('inputs')).toBe(0)
  })

  it('writes nothing on a pipe or with --json (disabled)', () => {
    const job = new EventEmitter<{ inputs: [InputFileStep] }>()
    const written: string[] = []
    const done = showInputSteps(job as never, false, {
      columns: 80,
      write: (s: string) => written.push(s) > 0,
    } as never)
    job.emit('inputs', { file: 'a', index: 0, count: 1, bytes: 1, step: 'hashing' })
    done()
    expect(written).toEqual([])
  })
})
