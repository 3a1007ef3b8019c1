/**
 * A hostile member: a real process that joined the mesh by invitation and
 * proved membership like any member, then misbehaves. Against real daemons
 * (an owner with 1 slot, a worker with 2) it must not be able to report a
 * result for a task it does not hold, take custody by lease, push a batch
 * with a bogus owner, stall the event loop with a crafted value or exhaust
 * memory with a huge blob header; its steal flood is rate-limited while a
 * job keeps running.
 */
import { randomBytes } from 'node:crypto'
import { existsSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Grid } from '../../src/client/index.ts'
import type { WireResult } from '../../src/domain/api.ts'
import { encodeValue } from '../../src/executor/values.ts'
import { encodeAdvert } from '../../src/protocol/advert/codec.ts'
import { Attacker, type RpcOutcome } from './attacker.ts'
import { eventually, TestMesh, type TestNode } from './harness.ts'
import { advertOf } from './member-peer.ts'

const WORK = new URL('./fixtures/work.ts', import.meta.url)
const MESH = 'hm'
const MiB = 1024 * 1024

interface Status {
  peerId: string
  pid: number
  rssMB: number
  capacity: { slots: number; freeSlots: number; running: number }
  scheduler: { refusedResults: number; refusedClaims: number; refusedPushes: number; [k: string]: unknown }
}

const status = (n: TestNode) => n.api<Status>('/v1/status')

let jobSeq = 0
function jobSpec(owner: string, work: Record<string, unknown>, id = `evil-${Date.now()}-${++jobSeq}`) {
  return {
    id,
    owner,
    work,
    resources: { cpu: 1, gpu: 0, memoryMB: 0 },
    timeoutMs: 20_000,
    maxAttempts: 3,
    retries: 0,
  }
}

function batchOf(job: ReturnType<typeof jobSpec>, inputs: Uint8Array[]) {
  return {
    jobs: [job],
    tasks: inputs.map((input, index) => ({ job: job.id, index, attempt: 0, input, depValues: [] })),
  }
}

/** The process's resident set now, in bytes (Linux). */
function rssOf(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))
  return m ? Number(m[1]) * 1024 : 0
}

/** Polls /v1/status every `everyMs` until stopped; records the slowest answer. */
function latencyProbe(node: TestNode, everyMs = 50) {
  let stop = false
  let worst = 0
  let failures = 0
  let samples = 0
  const done = (async () => {
    while (!stop) {
      const t = performance.now()
      try {
        await node.api('/v1/status')
      } catch {
        failures++
      }
      worst = Math.max(worst, performance.now() - t)
      samples++
      await new Promise((r) => setTimeout(r, everyMs))
    }
  })()
  return {
    async stop() {
      stop = true
      await done
      return { worst, failures, samples }
    },
  }
}

/** A refusal: an error reply, or the stream closed/reset instead of an answer; never an acceptance. */
function refused(r: RpcOutcome): boolean {
  return (
    r.reply?.t === 'error' || (r.reply === undefined && (r.closed !== undefined || r.refused !== undefined))
  )
}

describe('a hostile member of a private mesh', () => {
  const mesh = new TestMesh('hostile-member')
  let owner: TestNode
  let worker: TestNode
  let attacker: Attacker
  let grid: Grid

  beforeAll(async () => {
    owner = await mesh.add('owner', { mesh: MESH, cpus: 1 })
    worker = await mesh.add('worker', { cpus: 2, bootstrap: [owner.addr] })
    for (const [n, other] of [
      [owner, worker],
      [worker, owner],
    ] as const) {
      await eventually(
        `${n.name} to see ${other.name}`,
        async () =>
          (await n.api<Array<{ peerId: string }>>('/v1/peers')).some((p) => p.peerId === other.peerId),
        20_000,
      )
    }
    attacker = await Attacker.member(mesh)
    for (const n of [owner, worker]) {
      const d = await attacker.dial(n.addr)
      expect(d.member, `the hostile member proves membership to ${n.name}`).toBe(true)
    }
    grid = await connect({ dataDir: owner.dataDir })
  }, 90_000)
  afterAll(async () => {
    await attacker?.stop()
    await mesh.stopAll()
  })

  it('cannot report a result for a task it does not hold: the real result wins', async () => {
    const inputs = [1500, 1501, 1502, 1503]
    const job = grid.map<number, number>(WORK, 'sleepThen', inputs)
    const id = await job.id
    await eventually('the job to be running', async () => (await grid.job(id)).running > 0)
    const before = (await status(owner)).scheduler.refusedResults
    const forged = []
    for (const index of inputs.keys()) {
      for (const attempt of [0, 1, 2]) {
        for (const ranOn of [attacker.peerId, worker.peerId]) {
          forged.push({
            job: id,
            index,
            attempt,
            ranOn,
            outcome:
              attempt === 2
                ? { status: 'rejected', error: 'forged rejection', durationMs: 1 }
                : { status: 'ok', value: encodeValue(-1), durationMs: 1 },
          })
        }
      }
    }
    const r = await attacker.results(owner.peerId, forged)
    expect(r.reply?.t, JSON.stringify(r)).toBe('results-ack')
    expect(r.reply?.tasks, 'the owner acknowledges none of the forged results').toEqual([])
    // Again, later in the tasks' run.
    await new Promise((res) => setTimeout(res, 500))
    const again = await attacker.results(owner.peerId, forged)
    expect(again.reply?.tasks).toEqual([])

    expect(await job.results()).toEqual(inputs)
    const stored = await owner.api<WireResult[]>(`/v1/jobs/${id}/results`)
    expect(stored.map((s) => s.index).sort()).toEqual([0, 1, 2, 3])
    expect(stored.every((s) => s.ok)).toBe(true)
    for (const s of stored) expect([owner.peerId, worker.peerId]).toContain(s.ranOn)
    expect((await status(owner)).scheduler.refusedResults - before).toBeGreaterThanOrEqual(forged.length)
  }, 60_000)

  it('cannot pass its own runs off as an honest node’s: results it holds are stored as its own', async () => {
    const inputs = Array.from({ length: 24 }, (_, i) => 300 + i)
    const job = grid.map<number, number>(WORK, 'sleepThen', inputs)
    const id = await job.id
    await eventually('the job to be running', async () => (await grid.job(id)).running > 0)
    // A genuine steal: the owner hands the attacker two queued tasks...
    const grant = await attacker.steal(owner.peerId, 2, { cpu: 2, gpu: 0, memoryMB: 4096 })
    const stolen = grant.reply?.batch?.tasks ?? []
    expect(stolen.length, JSON.stringify(grant).slice(0, 300)).toBeGreaterThan(0)
    // ...whose results it reports as the honest worker's runs.
    const lies = stolen.map((d) => ({
      job: d.job,
      index: d.index,
      attempt: d.attempt,
      ranOn: worker.peerId,
      outcome: { status: 'ok', value: encodeValue(inputs[d.index]), durationMs: 1 },
      custody: d.custody,
    }))
    const r = await attacker.results(owner.peerId, lies)
    expect(r.reply?.tasks?.map((t) => t.index).sort()).toEqual(stolen.map((d) => d.index).sort())

    expect(await job.results()).toEqual(inputs)
    const stored = await owner.api<WireResult[]>(`/v1/jobs/${id}/results`)
    const mine = new Set(stolen.map((d) => d.index))
    for (const s of stored) {
      if (mine.has(s.index)) expect(s.ranOn, `task ${s.index}`).toBe(attacker.peerId)
      else expect([owner.peerId, worker.peerId]).toContain(s.ranOn)
    }
  }, 60_000)

  it('cannot claim custody by lease of tasks an honest worker holds', async () => {
    const inputs = [2000, 2001, 2002, 2003, 2004]
    const job = grid.map<number, number>(WORK, 'sleepThen', inputs)
    const id = await job.id
    await eventually(
      'the worker to be running tasks',
      async () => (await status(worker)).capacity.running > 0,
    )
    const before = (await status(owner)).scheduler.refusedClaims
    const holdings = []
    for (const index of inputs.keys()) {
      for (const attempt of [0, 1]) {
        holdings.push({ job: id, index, attempt, copy: 1 })
        // Made-up credentials: a tag the owner never computed.
        holdings.push({
          job: id,
          index,
          attempt,
          copy: 1,
          custody: { first: attacker.peerId, tag: new Uint8Array(randomBytes(16)), links: [] },
        })
      }
    }
    const r = await attacker.lease(owner.peerId, holdings)
    expect(r.reply?.t, JSON.stringify(r)).toBe('lease-answer')
    // Every claim is answered "drop": none was taken as held by the attacker.
    expect(r.reply?.drop).toHaveLength(holdings.length)
    expect((await status(owner)).scheduler.refusedClaims - before).toBeGreaterThan(0)

    expect(await job.results()).toEqual(inputs)
    const stored = await owner.api<WireResult[]>(`/v1/jobs/${id}/results`)
    expect(stored).toHaveLength(inputs.length)
    expect(new Set(stored.map((s) => s.index)).size).toBe(inputs.length)
    for (const s of stored) expect([owner.peerId, worker.peerId]).toContain(s.ranOn)
    expect(stored.some((s) => s.ranOn === worker.peerId)).toBe(true)
    const received = await attacker.received()
    expect(received.results.filter((x) => x.job === id)).toEqual([])
  }, 60_000)

  it('cannot push a batch with a bogus owner: refused, daemon alive, no slot leaked', async () => {
    const marker = join(mesh.root, `pwned-${Date.now()}`)
    const work = { kind: 'command', argv: ['touch', marker], env: {}, stdoutMaxBytes: 1024 }
    const stranger = peerIdFromPrivateKey(await generateKeyPair('Ed25519')).toString()
    const before = await status(worker)
    const cases: Array<[string, string]> = [
      ['not a peer ID', 'x'],
      ['a peer ID that is not a member', stranger],
      ['a member that is not the sender', owner.peerId],
    ]
    for (const [what, bogus] of cases) {
      const r = await attacker.push(worker.peerId, batchOf(jobSpec(bogus, work), [encodeValue('a')]))
      expect(r.reply?.t, `${what}: ${JSON.stringify(r)}`).not.toBe('push-ack')
      expect(refused(r), `${what}: ${JSON.stringify(r)}`).toBe(true)
    }
    // The old crash came from a lease timer about three seconds after such a push.
    const deadline = Date.now() + 4500
    while (Date.now() < deadline) {
      expect(worker.proc?.exitCode, 'the worker daemon exited').toBeNull()
      expect((await status(worker)).peerId).toBe(worker.peerId)
      await new Promise((r) => setTimeout(r, 300))
    }
    expect(existsSync(marker), 'a refused push ran its command').toBe(false)
    const after = await eventually('the worker to have every slot free', async () => {
      const s = await status(worker)
      return s.capacity.freeSlots === s.capacity.slots && s
    })
    expect(after.capacity.running).toBe(0)
    expect(after.scheduler.refusedPushes).toBeGreaterThanOrEqual(before.scheduler.refusedPushes + 2)
    // A later job still runs on the worker.
    const workerGrid = await connect({ dataDir: worker.dataDir })
    expect(await workerGrid.map<number, number>(WORK, 'square', [5, 6]).results()).toEqual([25, 36])
  }, 60_000)

  it('cannot stall the event loop with a crafted v8 value (pushed or granted to a thief)', async () => {
    const L = [0xfe, 0xff, 0xff, 0xff, 0x0f] // varint 2^32-2
    const crafted = [
      // 15 bytes: a sparse array of length 2^32-2 with no elements.
      new Uint8Array([0xff, 0x0f, 0x61, ...L, 0x40, 0x00, ...L]),
      // A dense array of length 2^32-2 (holes), 15 bytes.
      new Uint8Array([0xff, 0x0f, 0x41, ...L, 0x2d, 0x2d, 0x2d, 0x2d, 0x2d, 0x2d, 0x2d]),
    ]
    const work = { kind: 'command', argv: ['echo', '{}'], env: {}, stdoutMaxBytes: 1024 }

    // Pushed by the attacker as the owner of its own job.
    const pushed = jobSpec(attacker.peerId, work)
    let probe = latencyProbe(worker)
    const r = await attacker.push(worker.peerId, batchOf(pushed, crafted))
    await new Promise((res) => setTimeout(res, 4000))
    let lat = await probe.stop()
    expect(lat.failures).toBe(0)
    expect(lat.worst, `worst /v1/status latency after the push (${JSON.stringify(r)})`).toBeLessThan(1000)
    if (r.reply?.t === 'push-ack' && (r.reply.accepted ?? 0) > 0) {
      // Accepted: the tasks end (refused as bad input), never as a value the command saw.
      await eventually('the pushed tasks to be reported to their owner', async () => {
        const got = (await attacker.received()).results.filter((x) => x.job === pushed.id)
        return got.length === crafted.length && got
      })
      const got = (await attacker.received()).results.filter((x) => x.job === pushed.id)
      for (const g of got) expect(g.outcome.status).not.toBe('ok')
    }

    // Granted to the worker when it steals from the attacker, which advertises ready tasks.
    const granted = jobSpec(attacker.peerId, work)
    await attacker.plantBatch(batchOf(granted, crafted))
    const topic = `gridnode/${MESH}/capacity/1`
    await attacker.subscribe(topic)
    const stealsBefore = (await attacker.received()).steals
    probe = latencyProbe(worker)
    let seq = Date.now()
    await eventually(
      'the worker to steal from the attacker',
      async () => {
        const ad = advertOf(
          MESH,
          attacker.peerId,
          { seq: seq++, cpus: 1 },
          {
            slots: 1,
            ready: [{ resources: { cpu: 1, gpu: 0, memoryMB: 0 }, count: 2 }],
            running: 1,
            meanTaskMs: 1000,
          },
        )
        await attacker.publish(topic, encodeAdvert(ad))
        return (await attacker.received()).steals > stealsBefore
      },
      20_000,
      500,
    )
    await new Promise((res) => setTimeout(res, 4000))
    lat = await probe.stop()
    expect(lat.failures).toBe(0)
    expect(lat.worst, 'worst /v1/status latency after the steal').toBeLessThan(1000)
    expect((await status(worker)).peerId).toBe(worker.peerId)
  }, 90_000)

  it('cannot exhaust memory with a 256 MiB (or 2^53) blob header', async () => {
    const pid = worker.proc!.pid!
    const work = (bundle: string) => ({ kind: 'function', bundle, exportName: 'square', call: 'map' })
    const hash = () => randomBytes(32).toString('hex')

    // 2^53: past the schema's bound.
    await attacker.blobMode({ kind: 'header', size: 2 ** 53, chunks: 0, holdMs: 3000 })
    const first = hash()
    const p1 = await attacker.push(
      worker.peerId,
      batchOf(jobSpec(attacker.peerId, work(first)), [encodeValue(2)]),
    )
    expect(p1.reply?.t, JSON.stringify(p1)).toBe('push-ack')
    await eventually('the worker to ask the attacker for the bundle', async () =>
      (await attacker.blobStats()).hashes.includes(first),
    )
    expect((await status(worker)).peerId).toBe(worker.peerId)

    // 256 MiB announced, and then really sent, a MiB at a time.
    await attacker.blobMode({ kind: 'header', size: 256 * MiB, chunks: 250, holdMs: 8000 })
    await new Promise((r) => setTimeout(r, 1000))
    const baseline = rssOf(pid)
    const second = hash()
    const sentBefore = (await attacker.blobStats()).bytesSent
    const p2 = await attacker.push(
      worker.peerId,
      batchOf(jobSpec(attacker.peerId, work(second)), [encodeValue(3)]),
    )
    expect(p2.reply?.t, JSON.stringify(p2)).toBe('push-ack')
    let peak = baseline
    const until = Date.now() + 25_000
    let settledAt: number | undefined
    while (Date.now() < until) {
      peak = Math.max(peak, rssOf(pid))
      const s = await attacker.blobStats()
      const finished =
        s.hashes.includes(second) && (s.bytesSent - sentBefore >= 250 * MiB || s.errors.length > 0)
      if (finished) settledAt ??= Date.now()
      if (settledAt !== undefined && Date.now() - settledAt > 2000) break
      await new Promise((r) => setTimeout(r, 100))
    }
    const s = await attacker.blobStats()
    expect(s.hashes, 'the worker fetched the bundle from the attacker').toContain(second)
    const grewMiB = (peak - baseline) / MiB
    expect(
      grewMiB,
      `worker RSS grew by ${grewMiB.toFixed(0)} MiB while the attacker sent ${((s.bytesSent - sentBefore) / MiB).toFixed(0)} MiB after a 256 MiB header`,
    ).toBeLessThan(128)
    expect(worker.proc?.exitCode).toBeNull()
    expect((await status(worker)).peerId).toBe(worker.peerId)
    await attacker.blobMode({ kind: 'honest-miss' })
  }, 90_000)

  it('is rate-limited when it floods steals, while a job on the owner runs to completion', async () => {
    const inputs = [300, 301, 302, 303, 304, 305, 306, 307]
    const job = grid.map<number, number>(WORK, 'sleepThen', inputs)
    const id = await job.id
    const probe = latencyProbe(owner, 100)
    const flood = await attacker.stealFlood(owner.peerId, 5000, 2)
    const lat = await probe.stop()
    const limited = flood.streams.reduce((n, s) => n + (s.errors.GN_RATE_LIMITED ?? 0), 0)
    const closed = flood.streams.filter((s) => s.closed !== '' && s.replies < s.sent).length
    const admitted = flood.streams.reduce((n, s) => n + s.granted, 0)
    const summary = JSON.stringify(flood)
    expect(limited > 0 || closed > 0, `no rate limiting seen: ${summary}`).toBe(true)
    // Default steal limit: a burst of 400, then 200/s, per peer.
    expect(admitted, summary).toBeLessThanOrEqual(400 + (200 * flood.ms) / 1000 + 50)
    expect(flood.streams.every((s) => s.tasks === 0)).toBe(true)
    expect(lat.failures).toBe(0)
    expect(await job.results()).toEqual(inputs)
    expect((await grid.job(id)).status).toBe('done')
  }, 90_000)
})
