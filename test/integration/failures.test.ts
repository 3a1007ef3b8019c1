/**
 * What must not be lost or hang: the owner killed with kill -9 and restarted
 * mid-job, a task that keeps crashing its worker, tasks that throw, time out,
 * return what cannot be sent, name a missing export or module, and GPU tasks
 * that only a node with a (recorded) GPU may run, or none.
 */
import { chmodSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { BadSubmitError, connect, type Grid, JobFailedError } from '../../src/client/index.ts'
import type { WireResult } from '../../src/domain/api.ts'
import { eventually, REPO, TestMesh, type TestNode } from './harness.ts'

const WORK = new URL('./fixtures/work.ts', import.meta.url)

async function storedResults(node: TestNode, job: string): Promise<WireResult[]> {
  return node.api<WireResult[]>(`/v1/jobs/${job}/results`)
}

function fakeNvidiaSmi(dir: string, fixture: string): string {
  const script = join(dir, 'nvidia-smi')
  writeFileSync(script, `#!/bin/sh\ncat '${join(REPO, 'test/fixtures/nvidia-smi', fixture)}'\n`)
  chmodSync(script, 0o755)
  return script
}

describe('failures and bad input on a three-node mesh', () => {
  const mesh = new TestMesh('failures')
  let a: TestNode
  let owner: TestNode
  let gpuNode: TestNode
  let grid: Grid

  beforeAll(async () => {
    a = await mesh.add('a', { cpus: 2 })
    owner = await mesh.add('owner', { cpus: 2, bootstrap: [a.addr] })
    const smi = fakeNvidiaSmi(mesh.root, 'query-gpu_csv-nounits_1x-tesla-p100_na-fan.csv')
    gpuNode = await mesh.add('gpu', {
      cpus: 2,
      bootstrap: [a.addr],
      gpus: 'auto',
      env: { GRIDNODE_NVIDIA_SMI: smi },
    })
    for (const n of [a, owner, gpuNode]) {
      await eventually(
        `${n.name} to see 2 members`,
        async () => (await n.api<unknown[]>('/v1/peers')).length >= 2,
        20_000,
      )
    }
    grid = await connect({ dataDir: owner.dataDir })
  }, 90_000)
  afterAll(() => mesh.stopAll())

  it('gives per-task errors for throws, timeouts and unserializable results, and carries on', async () => {
    const thrown = grid.map<number, number>(WORK, 'fails', [0, 1, 2, 3])
    const err = await thrown.results().catch((e: unknown) => e)
    expect(err).toBeInstanceOf(JobFailedError)
    const failures = (err as JobFailedError).failures
    expect(failures.map((f) => f.index)).toEqual([1, 3])
    expect(failures[0].message).toContain('odd input 1')
    expect(failures[0].remoteStack).toContain('fails')

    const slow = grid.map(WORK, 'hang', [1, 2], { timeoutMs: 300 })
    const slowErr = (await slow.results().catch((e: unknown) => e)) as JobFailedError
    expect(slowErr.failures).toHaveLength(2)
    expect(slowErr.failures[0].message).toMatch(/time/i)

    const weird = grid.map(WORK, 'unserializable', [1])
    const weirdErr = (await weird.results().catch((e: unknown) => e)) as JobFailedError
    expect(weirdErr.failures[0].message).toMatch(/cannot encode a function/)

    // A missing export is refused at submit, before any job exists (issue 17).
    const noExport = grid.map(WORK, 'noSuchExport', [1, 2])
    const noExportErr = (await noExport.results().catch((e: unknown) => e)) as Error
    expect(noExportErr).toBeInstanceOf(BadSubmitError)
    expect(noExportErr.message).toContain('has no export named "noSuchExport"')

    // The mesh still works after all that.
    expect(await grid.map<number, number>(WORK, 'square', [1, 2, 3]).results()).toEqual([1, 4, 9])
  }, 60_000)

  it('refuses a module that does not exist with a clear error', async () => {
    const job = grid.map(join(REPO, 'test/integration/fixtures/missing.ts'), 'x', [1])
    await expect(job.results()).rejects.toThrow(/missing\.ts/)
  })

  it('fails a task that crashes its worker three times as poison, not forever', async () => {
    const job = grid.map(WORK, 'crash', [1], { maxAttempts: 3 })
    const err = (await job.results().catch((e: unknown) => e)) as JobFailedError
    expect(err).toBeInstanceOf(JobFailedError)
    expect(err.failures[0].message).toMatch(/poison/i)
    expect(err.failures[0].message).toMatch(/3/)
  }, 60_000)

  it('sends GPU tasks only to the node whose probe shows a GPU, with CUDA_VISIBLE_DEVICES set', async () => {
    const job = grid.run(
      ['sh', '-c', 'echo "$CUDA_VISIBLE_DEVICES"'],
      Array.from({ length: 6 }, (_, i) => String(i)),
      { gpu: 1 },
    )
    const out = await job.results()
    expect(out.map((r) => r.stdout.trim())).toEqual(Array(6).fill('0'))
    const stored = await storedResults(owner, await job.id)
    expect(new Set(stored.map((r) => r.ranOn))).toEqual(new Set([gpuNode.peerId]))
  }, 60_000)

  it('says why when no node has the GPUs a job needs', async () => {
    const job = grid.run(['true'], ['x'], { gpu: 2 })
    const reason = await new Promise<string>((resolve) => {
      if (job.blocked) resolve(job.blocked)
      job.on('blocked', (r) => r && resolve(r))
    })
    expect(reason).toMatch(/GPU/)
    await job.cancel()
    expect(await job.done()).toBe('cancelled')
  }, 30_000)

  it('resumes a job after the owner is killed with kill -9 and restarted, losing and repeating nothing', async () => {
    const total = 400
    const job = grid.map<number, number>(
      WORK,
      'sleepThen',
      Array.from({ length: total }, () => 25),
    )
    const id = await job.id
    await eventually(
      'part of the job done',
      async () => (await storedResults(owner, id)).length > total / 4,
      60_000,
      50,
    )
    await owner.kill9()
    job.detach()
    await owner.start()
    const before = await storedResults(owner, id)
    expect(before.length).toBeGreaterThan(total / 4)
    const regrid = await connect({ dataDir: owner.dataDir })
    const resumed = regrid.attach<number>(id)
    const values = await resumed.results()
    expect(values).toEqual(Array(total).fill(25))
    const after = await storedResults(owner, id)
    expect(after.map((r) => r.index)).toEqual(Array.from({ length: total }, (_, i) => i))
    // Results accepted before the crash are exactly the ones kept.
    const afterByIndex = new Map(after.map((r) => [r.index, r]))
    for (const r of before) expect(afterByIndex.get(r.index)?.ranOn).toBe(r.ranOn)
  }, 120_000)
})
