/**
 * Wire sizes (bytes) the network model charges for each message: a frame
 * header plus the content, close to what the codecs in src/protocol send.
 */
import type { Batch, SchedulerAdvert, TaskKey, TaskResult } from '../../src/scheduler/index.ts'

export const HEADER_BYTES = 64
const JOB_SPEC_BYTES = 160
const TASK_BYTES = 40
const RESULT_BYTES = 56
const KEY_BYTES = 24

export function batchBytes(b: Batch): number {
  let n = HEADER_BYTES + b.jobs.length * JOB_SPEC_BYTES
  for (const t of b.tasks) {
    n += TASK_BYTES + t.input.length
    for (const v of t.depValues) n += 4 + v.length
  }
  return n
}

export function resultsBytes(rs: readonly TaskResult[]): number {
  let n = HEADER_BYTES
  for (const r of rs) n += RESULT_BYTES + (r.outcome.status === 'ok' ? r.outcome.value.length : 64)
  return n
}

export function keysBytes(ks: readonly TaskKey[]): number {
  return HEADER_BYTES + ks.length * KEY_BYTES
}

export function advertBytes(a: SchedulerAdvert): number {
  return 200 + a.ready.length * 24
}

export const STEAL_REQUEST_BYTES = HEADER_BYTES + 48
export const SMALL_BYTES = HEADER_BYTES + 16
