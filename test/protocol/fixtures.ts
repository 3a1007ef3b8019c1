/** Sample messages for the protocol tests. */
import type { Batch, JobSpec, TaskDescriptor, TaskResult } from '../../src/scheduler/types.ts'

export const PEER_A = '12D3KooWA1111111111111111111111111111111111111111111'
export const PEER_B = '12D3KooWB2222222222222222222222222222222222222222222'

export function bytesOf(n: number, seed = 1): Uint8Array {
  const out = new Uint8Array(n)
  for (let i = 0; i < n; i++) out[i] = (i * 31 + seed) & 0xff
  return out
}

export function jobSpec(id = 'job-1', overrides: Partial<JobSpec> = {}): JobSpec {
  return {
    id,
    owner: PEER_A,
    work: { kind: 'function', bundle: 'a'.repeat(64), exportName: 'default', call: 'map' },
    resources: { cpu: 1, gpu: 0, memoryMB: 256 },
    timeoutMs: 60_000,
    maxAttempts: 3,
    retries: 0,
    ...overrides,
  }
}

export function task(job = 'job-1', index = 0, overrides: Partial<TaskDescriptor> = {}): TaskDescriptor {
  return { job, index, attempt: 1, input: bytesOf(16, index), depValues: [], ...overrides }
}

export function batch(tasks = 2): Batch {
  return {
    jobs: [
      jobSpec('job-1'),
      jobSpec('job-2', {
        work: { kind: 'command', argv: ['echo', '{}'], env: { LANG: 'C' }, stdoutMaxBytes: 65536 },
        resources: { cpu: 0.5, gpu: 1, memoryMB: 1024 },
        priority: -2,
      }),
      jobSpec('job-3', { work: { kind: 'noop' } }),
    ],
    tasks: Array.from({ length: tasks }, (_, i) =>
      task(
        i % 2 === 0 ? 'job-1' : 'job-2',
        i,
        i === 1 ? { depValues: [bytesOf(3), bytesOf(0)], costHintMs: 12.5 } : {},
      ),
    ),
  }
}

export function results(): TaskResult[] {
  return [
    {
      job: 'job-1',
      index: 0,
      attempt: 1,
      ranOn: PEER_B,
      outcome: { status: 'ok', value: bytesOf(40), durationMs: 3.25 },
    },
    {
      job: 'job-1',
      index: 1,
      attempt: 2,
      ranOn: PEER_B,
      outcome: {
        status: 'threw',
        error: 'TypeError: x is undefined',
        stack: 'at f (task.js:1:1)',
        durationMs: 1,
      },
    },
    {
      job: 'job-1',
      index: 2,
      attempt: 1,
      ranOn: PEER_B,
      outcome: { status: 'threw', error: 'boom', durationMs: 0 },
    },
    {
      job: 'job-2',
      index: 0,
      attempt: 1,
      ranOn: PEER_B,
      outcome: { status: 'timeout', error: 'timed out', durationMs: 5000 },
    },
    {
      job: 'job-2',
      index: 1,
      attempt: 3,
      ranOn: PEER_B,
      outcome: { status: 'crashed', error: 'OOM', durationMs: 10 },
    },
    {
      job: 'job-2',
      index: 2,
      attempt: 1,
      ranOn: PEER_B,
      outcome: { status: 'rejected', error: 'no bundle', durationMs: 0 },
    },
  ]
}

/** A message as a plain wire object (`v` and `t` included), deep-copied so tests can break it. */
export function wireObject<M extends { t: string }>(msg: M): Record<string, unknown> {
  return structuredClone({ v: 1, ...msg }) as Record<string, unknown>
}

/** Follows a dotted/indexed path (`batch.tasks.0`) into a wire object. */
export function at(root: Record<string, unknown>, path: string): Record<string, unknown> {
  let cur: unknown = root
  for (const key of path.split('.')) cur = (cur as Record<string, unknown>)[key]
  return cur as Record<string, unknown>
}
