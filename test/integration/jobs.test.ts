/**
 * Jobs across a real mesh: four daemons as processes on loopback, a job
 * submitted on a node that is not the bootstrap peer, workers killed with
 * kill -9 mid-job, and a node joining mid-job.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Grid } from '../../src/client/index.ts'
import type { WireResult } from '../../src/domain/api.ts'
import { eventually, TestMesh, type TestNode } from './harness.ts'

const WORK = new URL('./fixtures/work.ts', import.meta.url)

async function storedResults(node: TestNode, job: string): Promise<WireResult[]> {
  return node.api<WireResult[]>(`/v1/jobs/${job}/results`)
}

async function waitForMembers(nodes: TestNode[]): Promise<void> {
  for (const n of nodes) {
    await eventually(
      `${n.name} to see ${nodes.length - 1} members`,
      async () => (await n.api<unknown[]>('/v1/peers')).length >= nodes.length - 1,
      20_000,
    )
  }
}

describe('jobs on a four-node mesh', () => {
  const mesh = new TestMesh('jobs')
  let nodes: TestNode[]
  let submitter: TestNode
  let grid: Grid

  beforeAll(async () => {
    const a = await mesh.add('a', { cpus: 2 })
    const rest = await Promise.all(['b', 'c', 'd'].map((n) => mesh.add(n, { cpus: 2, bootstrap: [a.addr] })))
    nodes = [a, ...rest]
    submitter = rest[0]
    await waitForMembers(nodes)
    grid = await connect({ dataDir: submitter.dataDir })
  }, 90_000)
  afterAll(() => mesh.stopAll())

  it('runs 5,000 function tasks from a non-bootstrap node: every result correct, on every node', async () => {
    const inputs = Array.from({ length: 5000 }, (_, i) => i)
    const job = grid.map<number, number>(WORK, 'busySquare', inputs)
    const values = await job.results()
    expect(values).toEqual(inputs.map((i) => i * i))
    const stored = await storedResults(submitter, await job.id)
    expect(stored).toHaveLength(5000)
    const ranOn = new Set(stored.map((r) => r.ranOn))
    expect([...ranOn].sort()).toEqual(nodes.map((n) => n.peerId).sort())
  }, 120_000)

  it('completes with every result exactly once when two workers are killed mid-job', async () => {
    const total = 800
    const job = grid.map<number, number>(
      WORK,
      'sleepThen',
      Array.from({ length: total }, () => 15),
    )
    const seen: number[] = []
    const iterate = (async () => {
      for await (const r of job) seen.push(r.index)
    })()
    const id = await job.id
    const victims = [nodes[2], nodes[3]]
    await eventually(
      'a third of the job done',
      async () => (await storedResults(submitter, id)).length > total / 3,
      60_000,
      50,
    )
    await victims[0].kill9()
    await eventually(
      'two thirds of the job done',
      async () => (await storedResults(submitter, id)).length > (2 * total) / 3,
      60_000,
      50,
    )
    await victims[1].kill9()
    await iterate
    expect(await job.done()).toBe('done')
    expect(seen.sort((x, y) => x - y)).toEqual(Array.from({ length: total }, (_, i) => i))
    const stored = await storedResults(submitter, id)
    expect(stored.map((r) => r.index)).toEqual(Array.from({ length: total }, (_, i) => i))
    expect(stored.every((r) => r.ok)).toBe(true)
    await Promise.all(victims.map((v) => v.start()))
  }, 120_000)

  it('puts a node that joins mid-job to work', async () => {
    // About 10 s of work on 8 slots: long enough for a daemon to start and join on a loaded machine.
    const job = grid.map<number, number>(
      WORK,
      'sleepThen',
      Array.from({ length: 1600 }, () => 50),
    )
    const id = await job.id
    await eventually(
      'the job to start',
      async () => (await storedResults(submitter, id)).length > 20,
      30_000,
      50,
    )
    const late = await mesh.add('late', { cpus: 2, bootstrap: [nodes[0].addr] })
    await job.results()
    const stored = await storedResults(submitter, id)
    expect(stored.filter((r) => r.ranOn === late.peerId).length).toBeGreaterThan(0)
  }, 120_000)
})
