/**
 * Test helpers: a NodeScheduler wrapped so that every event gets a time and a
 * cause, invariants are checked after every step, and commands can be picked
 * by type (Dask style: feed events, compare commands).
 */

import type {
  Capacity,
  Command,
  CommandType,
  JobSpec,
  Resources,
  SchedulerAdvert,
  SchedulerEvent,
  TaskDescriptor,
  TaskInput,
  TaskKey,
  TaskOutcome,
  TaskResult,
} from '../../src/scheduler/index.ts'
import { NodeScheduler, type SchedulerOptions } from '../../src/scheduler/index.ts'

export type EventBody = SchedulerEvent extends infer E
  ? E extends SchedulerEvent
    ? Omit<E, 'at' | 'cause'> & { at?: number; cause?: string }
    : never
  : never

export type CommandOf<T extends CommandType> = Extract<Command, { type: T }>

export const enc = (s: string): Uint8Array => new TextEncoder().encode(s)
export const dec = (b: Uint8Array): string => new TextDecoder().decode(b)

export function capacity(slots = 2, memoryMB = 4096, gpus = 0): Capacity {
  return { slots, memoryMB, gpus: Array.from({ length: gpus }, (_, i) => ({ index: i, name: `gpu${i}` })) }
}

export function spec(id: string, owner: string, over: Partial<JobSpec> = {}): JobSpec {
  return {
    id,
    owner,
    work: { kind: 'noop' },
    resources: { cpu: 1, gpu: 0, memoryMB: 100 },
    timeoutMs: 0,
    maxAttempts: 3,
    retries: 0,
    ...over,
  }
}

export function inputs(n: number, deps: Record<number, number[]> = {}): TaskInput[] {
  return Array.from({ length: n }, (_, i) => ({ index: i, input: enc(`in${i}`), deps: deps[i] ?? [] }))
}

export function desc(job: string, index: number, attempt = 0, depValues: Uint8Array[] = []): TaskDescriptor {
  return { job, index, attempt, input: enc(`in${index}`), depValues }
}

export const ok = (v = 'v', durationMs = 10): TaskOutcome => ({ status: 'ok', value: enc(v), durationMs })
export const threw = (durationMs = 10): TaskOutcome => ({ status: 'threw', error: 'boom', durationMs })
export const crashed = (durationMs = 10): TaskOutcome => ({ status: 'crashed', error: 'oom', durationMs })
export const rejected = (): TaskOutcome => ({ status: 'rejected', error: 'no export', durationMs: 0 })

export function result(
  job: string,
  index: number,
  attempt: number,
  outcome: TaskOutcome,
  ranOn = 'b',
): TaskResult {
  return { job, index, attempt, ranOn, outcome }
}

export function key(job: string, index: number, attempt = 0): TaskKey {
  return { job, index, attempt }
}

export function advert(over: Partial<SchedulerAdvert> = {}): SchedulerAdvert {
  return {
    slots: 4,
    freeSlots: 4,
    memoryMB: 8192,
    freeMemoryMB: 8192,
    gpus: 0,
    freeGpus: 0,
    ready: [],
    running: 0,
    meanTaskMs: 0,
    ...over,
  }
}

export function ready(count: number, resources: Resources = { cpu: 1, gpu: 0, memoryMB: 100 }) {
  return [{ resources, count }]
}

/** A scheduler under test: `now` advances only when told; every step is checked. */
export class Node {
  readonly s: NodeScheduler
  readonly self: string
  now = 0
  private seq = 0
  /** Every command returned so far, in order. */
  readonly log: Command[] = []

  constructor(opts: Partial<SchedulerOptions> & { self?: string } = {}) {
    this.self = opts.self ?? 'a'
    // Tests pin prefetchFactor 2 (also the default) so batch sizes in small examples stay put if the default moves.
    this.s = new NodeScheduler({ self: this.self, capacity: capacity(), seed: 1, prefetchFactor: 2, ...opts })
  }

  /** Feeds one event (at `now` unless given) and returns its commands. */
  feed(body: EventBody): Command[] {
    const cause = body.cause ?? `e${++this.seq}`
    const at = body.at ?? this.now
    if (at > this.now) this.now = at
    const cmds = this.s.handle({ ...body, at, cause } as SchedulerEvent)
    this.s.checkInvariants()
    for (const c of cmds) {
      if (c.cause !== cause) throw new Error(`${c.type} does not carry cause ${cause}`)
    }
    this.log.push(...cmds)
    return cmds
  }

  /** Advances the clock to `at` with a tick. */
  tick(at: number): Command[] {
    return this.feed({ type: 'tick', at })
  }

  /** Ticks at every deadline up to `until`; returns all commands. */
  runUntil(until: number): Command[] {
    const out: Command[] = []
    for (let i = 0; i < 10_000; i++) {
      const d = this.s.nextDeadline()
      if (d === undefined || d > until) break
      out.push(...this.tick(d))
    }
    if (this.now < until) out.push(...this.tick(until))
    return out
  }

  submit(job: JobSpec, tasks: TaskInput[]): Command[] {
    return this.feed({ type: 'job-submitted', job, tasks })
  }
}

export function pick<T extends CommandType>(cmds: Command[], type: T): CommandOf<T>[] {
  return cmds.filter((c): c is CommandOf<T> => c.type === type)
}

/** Command types in order, without the chatty ones (adverts, progress). */
export function types(cmds: Command[]): CommandType[] {
  return cmds.map((c) => c.type).filter((t) => t !== 'publish-advert' && t !== 'job-progress')
}

/** The (job, index, attempt) of each run-task. */
export function runs(cmds: Command[]): string[] {
  return pick(cmds, 'run-task').map((c) => `${c.task.job}/${c.task.index}@${c.task.attempt}`)
}

export function finish(
  n: Node,
  c: CommandOf<'run-task'>,
  outcome: TaskOutcome = ok(),
  at?: number,
): Command[] {
  const t = c.task
  return n.feed({
    type: 'task-finished',
    at,
    task: { job: t.job, index: t.index, attempt: t.attempt },
    outcome,
  })
}
