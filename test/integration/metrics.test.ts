/**
 * Prometheus metrics of real daemons: a two-node mesh runs a job of 120
 * tasks (a few of which throw); both nodes are scraped, on the local API
 * (token required) and on `--metrics` (no token, nothing else served), and
 * the output is read with a Prometheus text-format parser. The counters must
 * match the job: every outcome counted once by the owner, every run counted
 * where it ran, steals on one side matching grants on the other, one
 * duration sample per run, libp2p's and the process's own metrics present.
 */
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import parsePrometheusTextFormat, { type PromFamily } from 'parse-prometheus-text-format'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '../../src/client/index.ts'
import { eventually, TestMesh, type TestNode } from './harness.ts'

const WORK = new URL('./fixtures/work.ts', import.meta.url)

type Families = Map<string, PromFamily> & { text: string }

function parse(text: string): Families {
  return Object.assign(new Map(parsePrometheusTextFormat(text).map((f) => [f.name, f])), { text })
}

/**
 * A histogram's sample count for one label value. parse-prometheus-text-format folds a
 * labelled histogram into one series without labels (its limitation), so the `_count`
 * lines are read here.
 */
function histogramCount(f: Families, name: string, label: string, v: string): number {
  let n = 0
  for (const line of f.text.split('\n')) {
    if (line.startsWith(`${name}_count{`) && line.includes(`${label}="${v}"`))
      n += Number(line.split(' ').at(-1))
  }
  return n
}

/** The value of a counter or gauge, summed over the samples whose labels include `labels`. */
function value(f: Families, name: string, labels: Record<string, string> = {}): number {
  const fam = f.get(name)
  if (fam === undefined) throw new Error(`no metric ${name}`)
  let n = 0
  for (const m of fam.metrics) {
    if (Object.entries(labels).every(([k, v]) => m.labels?.[k] === v)) n += Number(m.value ?? m.count ?? 0)
  }
  return n
}

async function scrapeApi(node: TestNode): Promise<Families> {
  const res = await fetch(`${node.ready!.api}/metrics`, {
    headers: { authorization: `Bearer ${await token(node)}` },
  })
  expect(res.status).toBe(200)
  expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/)
  return parse(await res.text())
}

async function token(node: TestNode): Promise<string> {
  return readFileSync(`${node.dataDir}/api.token`, 'utf8').trim()
}

describe('Prometheus metrics on a two-node mesh', () => {
  const mesh = new TestMesh('metrics')
  let owner: TestNode
  let worker: TestNode
  let metricsUrl: string

  beforeAll(async () => {
    owner = await mesh.add('owner', { cpus: 1, extraArgs: ['--metrics', '0'] })
    worker = await mesh.add('worker', { cpus: 2, bootstrap: [owner.addr] })
    metricsUrl = (owner.ready as unknown as { metrics: string }).metrics
    for (const n of [owner, worker]) {
      await eventually(
        `${n.name} to see the other`,
        async () => (await n.api<unknown[]>('/v1/peers')).length >= 1,
      )
    }
  }, 60_000)
  afterAll(() => mesh.stopAll())

  it('serves /metrics on --metrics without a token, and nothing else there', async () => {
    expect(metricsUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/)
    const res = await fetch(metricsUrl)
    expect(res.status).toBe(200)
    const f = parse(await res.text())
    expect(value(f, 'gridnode_members')).toBe(1)
    expect((await fetch(metricsUrl.replace(/\/metrics$/, '/v1/status'))).status).toBe(404)
    expect((await fetch(`${owner.ready!.api}/metrics`)).status).toBe(401)
  })

  it('counts a job that ran: outcomes, runs, steals, durations, bytes', async () => {
    const grid = await connect({ dataDir: owner.dataDir })
    const ok = Array.from({ length: 100 }, (_, i) => i)
    // `fails` throws on odd inputs: 10 of these 20 tasks fail (no retries).
    const mixed = Array.from({ length: 20 }, (_, i) => i)
    const a = grid.map<number, number>(
      WORK,
      'sleepThen',
      ok.map(() => 15),
    )
    const b = grid.map<number, number>(WORK, 'fails', mixed)
    await a.results()
    expect(await b.done()).toBe('failed')
    await eventually('both jobs to finish', async () => {
      const jobs = await owner.api<Array<{ status: string }>>('/v1/jobs')
      return jobs.length === 2 && jobs.every((j) => j.status !== 'running')
    })
    // Holders' results are acked before the owner stores them; scrape once the counts settle.
    const [o, w] = await eventually('run counts to settle', async () => {
      const o = await scrapeApi(owner)
      const w = await scrapeApi(worker)
      const runs = value(o, 'gridnode_tasks_finished_total') + value(w, 'gridnode_tasks_finished_total')
      return runs >= 120 ? [o, w] : undefined
    })

    // The owner counts every final outcome once.
    expect(value(o, 'gridnode_owned_task_results_total', { outcome: 'ok' })).toBe(110)
    expect(value(o, 'gridnode_owned_task_results_total', { outcome: 'failed' })).toBe(10)
    expect(value(o, 'gridnode_jobs_total', { status: 'submitted' })).toBe(2)
    expect(value(o, 'gridnode_jobs_total', { status: 'done' })).toBe(1)
    expect(value(o, 'gridnode_jobs_total', { status: 'failed' })).toBe(1)

    // Every run is counted where it ran; duplicates (tail backups) may add runs, never remove them.
    const both = (name: string, labels: Record<string, string> = {}) =>
      value(o, name, labels) + value(w, name, labels)
    const dupes = both('gridnode_duplicate_results_total') + both('gridnode_tasks_backups_total')
    expect(both('gridnode_tasks_finished_total', { outcome: 'threw' })).toBe(10)
    expect(both('gridnode_tasks_finished_total', { outcome: 'ok' })).toBeGreaterThanOrEqual(110)
    expect(both('gridnode_tasks_finished_total', { outcome: 'ok' })).toBeLessThanOrEqual(110 + dupes)
    for (const f of [o, w]) {
      expect(value(f, 'gridnode_tasks_run_total')).toBe(value(f, 'gridnode_tasks_finished_total'))
      // One duration sample per run, all of function tasks.
      expect(histogramCount(f, 'gridnode_task_duration_seconds', 'kind', 'function')).toBe(
        value(f, 'gridnode_tasks_finished_total', { kind: 'function' }),
      )
      expect(value(f, 'gridnode_steal_successes_total')).toBeLessThanOrEqual(
        value(f, 'gridnode_steal_attempts_total'),
      )
      expect(value(f, 'gridnode_members')).toBe(1)
      expect(value(f, 'gridnode_queue_depth')).toBe(0)
    }
    // Both nodes worked; the worker got its tasks by stealing or pushes, and a steal here is a grant there.
    expect(value(w, 'gridnode_tasks_finished_total')).toBeGreaterThan(0)
    expect(value(o, 'gridnode_tasks_finished_total')).toBeGreaterThan(0)
    expect(value(w, 'gridnode_tasks_stolen_total')).toBe(value(o, 'gridnode_tasks_given_total'))
    // Result values crossed the wire: the worker sent, the owner received.
    expect(value(w, 'gridnode_result_bytes_total', { direction: 'sent' })).toBeGreaterThan(0)
    expect(value(o, 'gridnode_result_bytes_total', { direction: 'received' })).toBeGreaterThan(0)
    // The worker fetched the code bundle from the owner, which served it.
    expect(value(w, 'gridnode_blob_bytes_total', { direction: 'fetched' })).toBeGreaterThan(0)
    expect(value(o, 'gridnode_blob_bytes_total', { direction: 'served' })).toBeGreaterThan(0)
    // libp2p's own metrics and the process's.
    expect(value(o, 'libp2p_data_transfer_bytes_total')).toBeGreaterThan(0)
    expect(value(o, 'process_cpu_user_seconds_total')).toBeGreaterThan(0)
    expect(o.get('gridnode_task_duration_seconds')?.type).toBe('HISTOGRAM')
  }, 90_000)

  it('gridnode why: a job no member can take, each member with its reason, and a task queued behind others', async () => {
    const grid = await connect({ dataDir: owner.dataDir })
    // Three slots per task: the owner has one, the worker two.
    const job = grid.map<number, number>(WORK, 'sleepThen', [1, 1, 1], { cpu: 3 })
    const id = await job.id
    const text = await eventually('the job to be blocked', async () => {
      const out = await owner.cli(['why', id])
      return out.stdout.includes('blocked:') ? out.stdout : undefined
    })
    expect(text).toContain('0 of 2 members could take one of its tasks right now')
    expect(text).toMatch(/needs 3 CPU slots; it has 1/)
    expect(text).toMatch(/needs 3 CPU slots; it has 2/)
    const task = await owner.cli(['why', id, '2', '--json'])
    expect(task.code).toBe(0)
    const w = JSON.parse(task.stdout) as {
      state: string
      queued: { ahead: number }
      members: Array<{ peer: string; kind: string }>
      story: Array<{ from: string; to: string; cause: string }>
    }
    expect(w.state).toBe('local')
    expect(w.queued.ahead).toBe(2)
    expect(w.members.map((m) => m.kind)).toEqual(['resources', 'resources'])
    expect(w.story[0]).toMatchObject({ from: 'waiting', to: 'local' })
    // The cause id in the story is the one on the daemon's log line for the submit.
    expect(w.story[0].cause).toMatch(new RegExp(`^submit:${id}#[0-9a-z]+$`))
    // Log lines are buffered for up to 100 ms.
    await eventually('the submit line in the log', async () =>
      readFileSync(join(owner.dataDir, 'daemon.log'), 'utf8').includes(`"cause":"${w.story[0].cause}"`),
    )
    await job.cancel()
  }, 60_000)
})
