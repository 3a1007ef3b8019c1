/**
 * Scheduler-facing fuzz: decoded steal/push/result/lease/cancel messages,
 * capacity adverts and steal replies from random peers, fed into a real
 * NodeScheduler that owns a small job, as src/node/driver.ts feeds them
 * (same event shapes, custody stripped as without credentials). After every
 * event the scheduler's invariants must hold; at the end the hostile peers
 * go away and the owner, running what it holds, must finish its job with
 * every task done or failed: no crash, no hang, no task lost.
 */
import fc from 'fast-check'
import { validateAdvert } from '../../src/protocol/advert/codec.ts'
import { leaseRequestCodec } from '../../src/protocol/lease/codec.ts'
import { resultRequestCodec } from '../../src/protocol/result/codec.ts'
import { stealReplyCodec, stealRequestCodec } from '../../src/protocol/steal/codec.ts'
import { NodeScheduler, type pushAllowed } from '../../src/scheduler/index.ts'
import type { Command, JobSpec, SchedulerEvent, TaskKey, TaskOutcome } from '../../src/scheduler/types.ts'
import { type FuzzCodec, FuzzFailure, knownBug, type RunOptions } from './codecs.ts'
import {
  batch,
  heldKey,
  hex,
  PEERS,
  type Sample,
  STREAM_MIX,
  samples,
  taskResult,
  validWire,
  type Wire,
} from './gen.ts'

const OWNER = PEERS[0]
const HOSTILE = PEERS.slice(1, 5)
const JOB = 'job-1'
const TASKS = 6

const job: JobSpec = {
  id: JOB,
  owner: OWNER,
  work: { kind: 'noop' },
  resources: { cpu: 1, gpu: 0, memoryMB: 100 },
  timeoutMs: 0,
  maxAttempts: 3,
  retries: 0,
}

const jobId = fc.constantFrom(JOB, JOB, JOB, 'job-2')
const index = fc.nat(TASKS)
const attempt = fc.nat(3)
const wire = (t: string, body: fc.Arbitrary<Record<string, unknown>>) =>
  body.map((b): Wire => ({ v: 1, t, ...b }))

/** Messages aimed at the owner's job: its id, indexes and attempts in range, often. */
const focused = {
  steal: fc.oneof(validWire.steal, wire('push', fc.record({ batch }))),
  result: wire(
    'results',
    fc.record({ results: fc.array(taskResult(jobId, index, attempt), { maxLength: 4 }) }),
  ),
  lease: fc.oneof(
    wire('lease', fc.record({ holdings: fc.array(heldKey(jobId, index, attempt), { maxLength: 6 }) })),
    wire('cancel', fc.record({ job: jobId })),
  ),
  advert: validWire.advert,
  'steal-reply': wire('steal-reply', fc.record({ batch })),
}

type Proto = keyof typeof focused

const codecOf: Record<Proto, FuzzCodec['decode']> = {
  steal: (b) => stealRequestCodec.decode(b),
  result: (b) => resultRequestCodec.decode(b),
  lease: (b) => leaseRequestCodec.decode(b),
  advert: (b) => b, // validateAdvert decodes
  'steal-reply': (b) => stealReplyCodec.decode(b),
}

const typesOf: Record<Proto, string[]> = {
  steal: ['steal', 'push'],
  result: ['results'],
  lease: ['lease', 'cancel'],
  advert: ['advert'],
  'steal-reply': ['steal-reply', 'push-ack', 'error'],
}

type Step =
  | { kind: 'message'; proto: Proto; peer: string; sample: Sample }
  | { kind: 'tick'; ms: number }
  | { kind: 'finish'; pick: number; outcome: 'ok' | 'threw' | 'crashed' }

const message = (proto: Proto) =>
  fc.record({
    kind: fc.constant('message' as const),
    proto: fc.constant(proto),
    peer: fc.constantFrom(...HOSTILE),
    sample: samples(focused[proto], typesOf[proto], STREAM_MIX),
  })

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 3, arbitrary: message('steal') },
  { weight: 3, arbitrary: message('result') },
  { weight: 3, arbitrary: message('lease') },
  { weight: 1, arbitrary: message('advert') },
  { weight: 1, arbitrary: message('steal-reply') },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('tick' as const), ms: fc.nat(3000) }) },
  {
    weight: 2,
    arbitrary: fc.record({
      kind: fc.constant('finish' as const),
      pick: fc.nat(),
      outcome: fc.constantFrom<'ok' | 'threw' | 'crashed'>('ok', 'ok', 'ok', 'threw', 'crashed'),
    }),
  },
)

function outcomeOf(kind: 'ok' | 'threw' | 'crashed'): TaskOutcome {
  if (kind === 'ok') return { status: 'ok', value: new Uint8Array([1]), durationMs: 5 }
  if (kind === 'threw') return { status: 'threw', error: 'boom', durationMs: 5 }
  return { status: 'crashed', error: 'worker died', durationMs: 5 }
}

export interface SchedulerTally {
  runs: number
  /** Peer messages generated, and those that decoded and reached the scheduler. */
  messages: number
  fed: number
  refusedPushes: number
  refusedResults: number
  refusedClaims: number
  /** Batches skipped because they hit the known job-id collision bug. */
  collisions: number
}

/** One owner, one job, hostile peers; the driver's event shapes. */
class Harness {
  readonly sched = new NodeScheduler({
    self: OWNER,
    capacity: { slots: 1, memoryMB: 4096, gpus: [] },
    seed: 7,
  })
  now = 1_000
  private seq = 0
  private requestIds = 0
  readonly running: TaskKey[] = []
  readonly steals: Array<{ to: string; requestId: number }> = []
  finished?: Extract<Command, { type: 'job-finished' }>
  readonly trace: string[] = []

  feed(body: Record<string, unknown> & { type: SchedulerEvent['type'] }): Command[] {
    const event = { ...body, at: this.now, cause: `e${++this.seq}` } as SchedulerEvent
    this.trace.push(event.type)
    const commands = this.sched.handle(event)
    this.sched.checkInvariants()
    for (const c of commands) {
      if (c.type === 'run-task')
        this.running.push({ job: c.task.job, index: c.task.index, attempt: c.task.attempt })
      else if (c.type === 'send-steal') this.steals.push({ to: c.to, requestId: c.requestId })
      else if (c.type === 'job-finished' && c.job === JOB) this.finished = c
    }
    return commands
  }

  /** Batches reusing a job id under another owner (fed: the scheduler must refuse them; counted). */
  collisions = 0
  private readonly owners = new Map<string, string>([[JOB, OWNER]])

  /** Counts a batch that reuses a job id under another owner; it is still fed. */
  private noteCollision(b: { jobs: Array<{ id: string; owner: string }> }): void {
    if (b.jobs.some((j) => (this.owners.get(j.id) ?? j.owner) !== j.owner)) this.collisions++
    for (const j of b.jobs) if (!this.owners.has(j.id)) this.owners.set(j.id, j.owner)
  }

  finish(pick: number, outcome: TaskOutcome): void {
    if (this.running.length === 0) return
    const [task] = this.running.splice(pick % this.running.length, 1)
    // Every third pick ends two runs as one step, as the driver feeds runs that end together, with a
    // late repeat of the first (ignored).
    if (pick % 3 === 2 && this.running.length > 0) {
      const [other] = this.running.splice((pick >> 2) % this.running.length, 1)
      const finished = [
        { task, outcome },
        { task: other, outcome },
        { task, outcome },
      ]
      this.feed({ type: 'tasks-finished', finished })
    } else this.feed({ type: 'task-finished', task, outcome })
  }

  /** A peer message, decoded as the servers do, then turned into the driver's event. Returns whether it was fed. */
  deliver(proto: Proto, from: string, bytes: Uint8Array): boolean {
    if (proto === 'advert') {
      const check = validateAdvert(bytes, {
        mesh: 'default',
        from,
        now: this.now,
        maxAgeMs: Number.MAX_SAFE_INTEGER,
      })
      if (!check.ok) return false
      this.feed({ type: 'advert-received', peer: from, advert: check.advert.sched })
      return true
    }
    let msg: { t: string } & Record<string, unknown>
    try {
      msg = codecOf[proto](bytes) as typeof msg
    } catch {
      return false
    }
    switch (msg.t) {
      case 'steal': {
        const m = msg as unknown as { free: { cpu: number; gpu: number; memoryMB: number }; max: number }
        this.feed({ type: 'steal-requested', from, requestId: ++this.requestIds, free: m.free, max: m.max })
        return true
      }
      case 'push': {
        const { batch: b } = msg as unknown as { batch: Parameters<typeof pushAllowed>[1] }
        // The driver refuses pushes naming jobs the sender does not own before feeding them.
        if (!b.jobs.every((j) => j.owner === from)) return false
        this.noteCollision(b)
        this.feed({ type: 'batch-pushed', from, batch: b })
        return true
      }
      case 'results': {
        const { results } = msg as unknown as {
          results: Array<{ custody?: unknown } & Record<string, unknown>>
        }
        this.feed({ type: 'results-received', from, results: results.map(({ custody: _c, ...r }) => r) })
        return true
      }
      case 'lease': {
        const { holdings } = msg as unknown as {
          holdings: Array<{ custody?: unknown } & Record<string, unknown>>
        }
        this.feed({ type: 'lease-received', from, holdings: holdings.map(({ custody: _c, ...k }) => k) })
        return true
      }
      case 'cancel':
        this.feed({ type: 'cancel-received', from, job: (msg as unknown as { job: string }).job })
        return true
      case 'steal-reply':
      case 'push-ack':
      case 'error': {
        // A hostile victim's answer to our oldest outstanding steal to it (or to anyone).
        const i = Math.max(
          0,
          this.steals.findIndex((s) => s.to === from),
        )
        const pending = this.steals.splice(i, 1)[0]
        if (pending === undefined) return false
        const b = (msg as unknown as { batch?: Parameters<typeof pushAllowed>[1] }).batch
        if (msg.t === 'steal-reply' && b !== undefined) {
          this.noteCollision(b)
          this.feed({ type: 'steal-granted', from: pending.to, requestId: pending.requestId, batch: b })
        } else {
          this.feed({ type: 'steal-failed', from: pending.to, requestId: pending.requestId, reason: msg.t })
        }
        return true
      }
      default:
        return false
    }
  }

  /** Hostile peers leave; the owner runs what it holds until its job ends (or gives up: a lost task). */
  drain(): void {
    for (const p of HOSTILE) this.feed({ type: 'peer-gone', peer: p })
    for (const s of this.steals.splice(0)) {
      this.feed({ type: 'steal-failed', from: s.to, requestId: s.requestId, reason: 'gone' })
    }
    for (let i = 0; i < 5000 && this.finished === undefined; i++) {
      if (this.running.length > 0) {
        this.finish(0, outcomeOf('ok'))
        continue
      }
      for (const s of this.steals.splice(0)) {
        this.feed({ type: 'steal-failed', from: s.to, requestId: s.requestId, reason: 'gone' })
      }
      const next = this.sched.nextDeadline()
      this.now = next === undefined ? this.now + 1000 : Math.max(next, this.now + 1)
      this.feed({ type: 'tick' })
    }
  }
}

/** Runs `numRuns` generated histories of up to `steps` events each. */
export function fuzzScheduler(opts: RunOptions & { steps?: number }): SchedulerTally {
  const tally: SchedulerTally = {
    runs: 0,
    messages: 0,
    fed: 0,
    refusedPushes: 0,
    refusedResults: 0,
    refusedClaims: 0,
    collisions: 0,
  }
  const max = opts.steps ?? 40
  fc.assert(
    fc.property(fc.array(step, { minLength: Math.ceil(max / 2), maxLength: max }), (steps) => {
      tally.runs++
      const h = new Harness()
      const tasks = Array.from({ length: TASKS }, (_, i) => ({
        index: i,
        input: new Uint8Array([i]),
        deps: [],
      }))
      h.feed({ type: 'job-submitted', job, tasks })
      for (const p of HOSTILE) h.feed({ type: 'peer-connected', peer: p })
      for (const s of steps) {
        if (s.kind === 'tick') {
          h.now += s.ms
          h.feed({ type: 'tick' })
        } else if (s.kind === 'finish') {
          h.finish(s.pick, outcomeOf(s.outcome))
        } else {
          tally.messages++
          let fed: boolean
          try {
            fed = h.deliver(s.proto, s.peer, s.sample.bytes)
          } catch (err) {
            if (knownBug(err) !== undefined) continue
            throw new FuzzFailure(
              `scheduler: a ${s.proto} message from ${s.peer} threw ${(err as Error).name}: ${(err as Error).message}` +
                `\n  input: ${hex(s.sample.bytes)}\n  events: ${h.trace.join(' ')}\n  ${(err as Error).stack}`,
            )
          }
          if (fed) tally.fed++
        }
      }
      h.drain()
      const progress = h.sched.jobProgress(JOB)
      if (h.finished === undefined) {
        throw new FuzzFailure(`scheduler: job never finished (task lost?): ${JSON.stringify(progress)}`)
      }
      const p = h.finished.progress
      if (p.total !== TASKS || p.done + p.failed !== TASKS) {
        throw new FuzzFailure(`scheduler: job finished with tasks unaccounted for: ${JSON.stringify(p)}`)
      }
      const stats = h.sched.stats()
      tally.refusedPushes += stats.refusedPushes
      tally.refusedResults += stats.refusedResults
      tally.refusedClaims += stats.refusedClaims
      tally.collisions += h.collisions
    }),
    { numRuns: opts.numRuns, seed: opts.seed },
  )
  return tally
}
