/**
 * Futures and task graphs on the mesh: dependencies between submits resolved
 * by the owner daemon, so a client may exit right after submitting; ids at
 * once; failure rules per dependency; cancel.
 */
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Grid, JobCancelledError, orError, TaskError } from '../../src/client/index.ts'
import { eventually, REPO, runProcess, TestMesh, type TestNode } from './harness.ts'

const TASKS = new URL('./fixtures/futures-tasks.ts', import.meta.url)

async function failure(p: PromiseLike<unknown>): Promise<Error> {
  try {
    await p
  } catch (err) {
    return err as Error
  }
  throw new Error('expected a rejection')
}

describe('futures and graphs on a two-node mesh', () => {
  const mesh = new TestMesh('futures')
  let owner: TestNode
  let grid: Grid

  beforeAll(async () => {
    owner = await mesh.add('owner', { cpus: 2 })
    const other = await mesh.add('other', { cpus: 2, bootstrap: [owner.addr] })
    await eventually('the two nodes to see each other', async () => {
      const [a, b] = await Promise.all([owner, other].map((n) => n.api<unknown[]>('/v1/peers')))
      return a.length >= 1 && b.length >= 1
    })
    grid = await connect({ dataDir: owner.dataDir })
  }, 90_000)
  afterAll(() => mesh.stopAll())

  it('a chain runs to its end on the owner after the client exits; results readable with gridnode results', async () => {
    const script = join(mesh.root, 'chain.mts')
    writeFileSync(
      script,
      `import { connect } from ${JSON.stringify(join(REPO, 'src/client/index.ts'))}
const grid = await connect({ dataDir: ${JSON.stringify(owner.dataDir)} })
const tasks = ${JSON.stringify(fileURLToPath(TASKS))}
const a = grid.submit(tasks, 'slowAdd', [1, 2, 1500])
const b = grid.submit(tasks, 'add', [a, 10])
const c = grid.submit(tasks, 'add', [b, a])
console.log(JSON.stringify({ a: a.id, b: b.id, c: c.id }))
await c.submitted
`,
    )
    const started = Date.now()
    const r = await runProcess(process.execPath, [script])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    // The client left on its own (no process.exit) while a still slept: nothing waited for it in the caller.
    expect(Date.now() - started).toBeLessThan(15_000)
    expect(await owner.api<{ status: string }>(`/v1/jobs/${JSON.parse(r.stdout).c}`)).toMatchObject({
      status: 'running',
    })
    const ids = JSON.parse(r.stdout) as { a: string; b: string; c: string }
    const c = await eventually(
      'the last task of the chain to finish',
      async () => {
        const res = await owner.cli(['results', ids.c, '--json'])
        return res.code === 0 ? res : undefined
      },
      30_000,
      300,
    )
    expect(JSON.parse(c.stdout)).toEqual({ index: 0, value: 16 })
    const b = await owner.cli(['results', ids.b])
    expect(b.stdout).toBe('13\n')
  })

  it('gives future.id at once, and a dependent of a failed task says which dependency failed', async () => {
    const a = grid.submit<number>(TASKS, 'boom', ['the disk is full'])
    expect(typeof a.id).toBe('string')
    expect(a.id).toMatch(/^[a-z0-9]+-[0-9a-f]{10}$/)
    const b = grid.submit<number>(TASKS, 'add', [a, 1])
    const err = await failure(b)
    expect(err).toBeInstanceOf(TaskError)
    expect(err.message).toContain(`dependency 0 (task 0 of job ${a.id}) failed: the disk is full`)
    expect((await failure(a)).message).toContain('the disk is full')
    const job = await grid.job(b.id)
    expect(job.status).toBe('failed')
  })

  it('orError(future) runs the dependent with the error as its input', async () => {
    const a = grid.submit(TASKS, 'boom', ['no such file'])
    const ok = grid.submit(TASKS, 'add', [20, 22])
    const told = grid.submit<string>(TASKS, 'describe', [orError(a)])
    const fine = grid.submit<string>(TASKS, 'describe', [orError(ok)])
    expect(await told).toMatch(/^error Error: dependency 0 \(task 0 of job .*\) failed: no such file$/)
    expect(await fine).toBe('value 42')
  })

  it('grid.graph(): add() returns handles, run() submits them all; values flow along the edges', async () => {
    const g = grid.graph()
    const x = g.add<number>(TASKS, 'add', [1, 1])
    const y = g.add<number>(TASKS, 'slowAdd', [x, 3, 200])
    const z = g.add<number>(TASKS, 'add', [x, y])
    const bad = g.add(TASKS, 'boom', ['nope'])
    const after = g.add<string>(TASKS, 'describe', [orError(bad)])
    const handles = await g.run()
    expect(handles.map((h) => h.id)).toEqual([x.id, y.id, z.id, bad.id, after.id])
    expect(await z).toBe(7)
    expect(await after).toMatch(/^error Error: dependency 0 \(task 0 of job .*\) failed: nope$/)
    expect(() => g.add(TASKS, 'add', [1, 2])).toThrow(/after run/)
  })

  it('future.cancel() stops a task; its dependents fail saying it did not run', async () => {
    const a = grid.submit(TASKS, 'sleep', [20_000])
    const b = grid.submit<number>(TASKS, 'add', [a, 1])
    await b.submitted
    await a.cancel()
    expect(await failure(a)).toBeInstanceOf(JobCancelledError)
    const err = await failure(b)
    expect(err.message).toMatch(/dependency 0 \(task 0 of job .*\) did not run/)
  })

  it('cancelling a waiting dependent cancels it without running it', async () => {
    const a = grid.submit(TASKS, 'sleep', [1500])
    const b = grid.submit<number>(TASKS, 'add', [a, 1])
    await b.submitted
    expect((await grid.job(b.id)).status).toBe('running')
    await b.cancel()
    expect(await failure(b)).toBeInstanceOf(JobCancelledError)
    expect((await grid.job(b.id)).status).toBe('cancelled')
    expect(await a).toBe(1500)
  })

  it('a dependent waiting when its owner is killed (kill -9) waits again after the restart, then runs', async () => {
    const a = grid.submit(TASKS, 'sleep', [1500])
    const b = grid.submit<number>(TASKS, 'add', [a, 1])
    await b.submitted
    await owner.kill9()
    await owner.start()
    const res = await eventually(
      'the dependent to finish after the restart',
      async () => {
        const r = await owner.cli(['results', b.id, '--json'])
        return r.code === 0 ? r : undefined
      },
      40_000,
      300,
    )
    expect(JSON.parse(res.stdout)).toEqual({ index: 0, value: 1501 })
  })
})
