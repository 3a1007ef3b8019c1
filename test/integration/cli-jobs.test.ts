/**
 * `gridnode jobs / job / results / cancel` against real daemons: history
 * that survives a restart of the owner, and a cancel that stops a job's
 * remaining tasks on every node.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { eventually, TestMesh, type TestNode } from './harness.ts'

const WORK = fileURLToPath(new URL('./fixtures/cli-work.ts', import.meta.url))
const files = mkdtempSync(join(tmpdir(), 'gridnode-cli-jobs-'))

interface Summary {
  id: string
  status: string
  total: number
  done: number
  failed: number
}

function lines(text: string): string[] {
  return text.split('\n').filter((l) => l !== '')
}

async function waitForMembers(nodes: TestNode[]): Promise<void> {
  for (const n of nodes) {
    await eventually(
      `${n.name} to see the others`,
      async () => (await n.api<unknown[]>('/v1/peers')).length >= nodes.length - 1,
    )
  }
}

describe('job history and cancel on a three-node mesh', () => {
  const mesh = new TestMesh('cli-jobs')
  let nodes: TestNode[]
  let owner: TestNode

  beforeAll(async () => {
    const a = await mesh.add('a', { cpus: 1 })
    const rest = await Promise.all(['b', 'c'].map((n) => mesh.add(n, { cpus: 1, bootstrap: [a.addr] })))
    nodes = [a, ...rest]
    owner = rest[0]
    await waitForMembers(nodes)
  }, 60_000)
  afterAll(async () => {
    await mesh.stopAll()
    rmSync(files, { recursive: true, force: true })
  })

  it('lists jobs and serves their results after the owner daemon restarts', async () => {
    const inputs = join(files, 'in.jsonl')
    writeFileSync(inputs, '1\n2\n3\n4\n5\n')
    const first = await owner.cli(['map', WORK, 'failsOnOdd', '--inputs', inputs])
    expect(first.code).toBe(1)
    const [job] = JSON.parse((await owner.cli(['jobs', '--json'])).stdout) as Summary[]
    expect(job).toMatchObject({ status: 'failed', total: 5, done: 2, failed: 3 })

    await owner.stop()
    await owner.start()

    const listed = await owner.cli(['jobs'])
    expect(listed.code).toBe(0)
    expect(listed.stdout).toMatch(new RegExp(`${job.id}\\s+failed\\s+2/5 done, 3 failed`))
    const one = await owner.cli(['job', job.id, '--json'])
    expect(JSON.parse(one.stdout)).toMatchObject({ id: job.id, status: 'failed', total: 5, kind: 'function' })
    const human = await owner.cli(['job', job.id])
    expect(human.stdout).toMatch(/^status\s+failed at /m)

    const results = await owner.cli(['results', job.id])
    expect(results.code).toBe(1)
    expect(results.stdout).toBe(first.stdout)
    expect(lines(results.stdout)).toEqual(['2', '4'])
    expect(results.stderr).toContain('task 0 failed: odd input 1')
    expect(results.stderr).toMatch(/3 of 5 tasks failed/)
    const asJson = await owner.cli(['results', job.id, '--json'])
    const got = lines(asJson.stdout).map((l) => JSON.parse(l))
    expect(got).toHaveLength(5)
    expect(got).toContainEqual({ index: 1, value: 2 })
    expect(got).toContainEqual({ index: 4, error: 'odd input 5' })
    await waitForMembers(nodes)
  }, 45_000)

  it('cancel stops the remaining tasks on every node, and no more results arrive', async () => {
    const inputs = join(files, 'slow.jsonl')
    writeFileSync(inputs, Array.from({ length: 120 }, () => '200').join('\n'))
    const mapping = owner.cli(['map', WORK, 'sleepThen', '--inputs', inputs, '--json'])
    const job = await eventually(
      'the job to be running on every node',
      async () => {
        const [j] = await owner.api<Summary[]>('/v1/jobs?limit=1')
        if (j?.status !== 'running' || j.done < 6) return undefined
        const running = await Promise.all(nodes.map((n) => runningTasks(n)))
        return running.every((r) => r > 0) ? j : undefined
      },
      20_000,
      50,
    )
    const cancel = await owner.cli(['cancel', job.id])
    expect(cancel.code).toBe(0)
    expect(cancel.stdout).toMatch(new RegExp(`^cancelled job ${job.id} \\(\\d+ of 120 tasks had finished\\)`))

    const mapped = await mapping
    expect(mapped.code).toBe(1)
    expect(mapped.stderr).toMatch(new RegExp(`job ${job.id} was cancelled: \\d+ of 120 tasks had finished`))
    const printed = lines(mapped.stdout).length
    expect(printed).toBeLessThan(60)

    for (const n of nodes) {
      await eventually(
        `${n.name} to stop running the job's tasks`,
        async () => (await runningTasks(n)) === 0,
        5000,
        50,
      )
    }
    const after = JSON.parse((await owner.cli(['job', job.id, '--json'])).stdout) as Summary
    expect(after.status).toBe('cancelled')
    const stored = (await owner.api<unknown[]>(`/v1/jobs/${job.id}/results`)).length
    await new Promise((r) => setTimeout(r, 1500))
    expect((await owner.api<unknown[]>(`/v1/jobs/${job.id}/results`)).length).toBe(stored)
    for (const n of nodes) expect(await runningTasks(n)).toBe(0)
    const again = await owner.cli(['cancel', job.id, '--json'])
    expect(JSON.parse(again.stdout)).toEqual({ id: job.id, status: 'cancelled' })
  }, 45_000)
})

async function runningTasks(n: TestNode): Promise<number> {
  const s = await n.api<{ capacity: { running: number } }>('/v1/status')
  return s.capacity.running
}
