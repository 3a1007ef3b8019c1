/**
 * The task counters and the duration histogram are counted in plain numbers and read by
 * prom-client at scrape time. Here the scrape is compared line by line with what prom-client's
 * own Counter and Histogram print for the same runs, fed one by one as before.
 */
import { Counter, Histogram, Registry } from 'prom-client'
import { describe, expect, it } from 'vitest'
import { NodeMetrics } from '../../src/node/metrics.ts'
import type { Command, FinishedRun, JobSpec, SchedulerEvent, TaskOutcome } from '../../src/scheduler/types.ts'

const BUCKETS = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800]

function spec(id: string, kind: 'function' | 'command'): JobSpec {
  const work =
    kind === 'function'
      ? { kind, bundle: 'b'.repeat(64), exportName: 'f' }
      : { kind, argv: ['true'], env: {}, stdoutMaxBytes: 1024 }
  return {
    id,
    owner: 'owner',
    work,
    resources: { cpu: 1, gpu: 0, memoryMB: 0 },
    timeoutMs: 0,
    maxAttempts: 3,
    retries: 0,
  } as JobSpec
}

function runTask(job: JobSpec, index: number): Command {
  return {
    type: 'run-task',
    cause: 'test',
    job,
    task: { job: job.id, index, attempt: 1, input: new Uint8Array(), depValues: [] },
    gpus: [],
  }
}

/** The lines of one metric family in a scrape, sorted (series order is not part of the format). */
function family(text: string, name: string): string[] {
  return text
    .split('\n')
    .filter((l) => l.startsWith(`${name}_`) || l.startsWith(`${name}{`) || l.startsWith(`${name} `))
    .sort()
}

describe('NodeMetrics task counts', () => {
  it('prints the same runs and durations as prom-client counting each run', async () => {
    const metrics = new NodeMetrics()
    const reference = new Registry()
    const finished = new Counter({
      name: 'gridnode_tasks_finished_total',
      help: 'x',
      labelNames: ['outcome', 'kind'],
      registers: [reference],
    })
    const duration = new Histogram({
      name: 'gridnode_task_duration_seconds',
      help: 'x',
      labelNames: ['kind', 'outcome'],
      buckets: BUCKETS,
      registers: [reference],
    })
    const jobs = [spec('j-fn', 'function'), spec('j-cmd', 'command')]
    metrics.observe({ type: 'tick', at: 0, cause: 'test' } as SchedulerEvent, [
      runTask(jobs[0], 0),
      runTask(jobs[1], 0),
    ])
    // Every bucket bound exactly, just above and below it, zero, negative, beyond the last bound, not finite.
    const durationsMs = [
      0,
      -5,
      1e7,
      ...BUCKETS.flatMap((b) => [b * 1000, b * 1000 * 0.999, b * 1000 * 1.001]),
      // Not finite: counted as 0 s (prom-client threw; the sum must stay a number).
      Number.NaN,
      Number.POSITIVE_INFINITY,
      Number.NEGATIVE_INFINITY,
    ]
    const statuses: TaskOutcome['status'][] = ['ok', 'threw', 'timeout', 'crashed']
    const runs: FinishedRun[] = []
    durationsMs.forEach((ms, i) => {
      const status = statuses[i % statuses.length]
      const job = i % 3 === 0 ? 'j-cmd' : i % 7 === 0 ? 'never-started-here' : 'j-fn'
      const outcome = (
        status === 'ok'
          ? { status, value: new Uint8Array(), durationMs: ms }
          : { status, error: 'e', durationMs: ms }
      ) as TaskOutcome
      runs.push({ task: { job, index: i, attempt: 1 }, outcome })
    })
    // One batch, then one run on its own (task-finished); the reference in the same order (sums).
    metrics.observe({ type: 'tasks-finished', at: 1, cause: 'test', finished: runs.slice(1) }, [])
    metrics.observe({ type: 'task-finished', at: 2, cause: 'test', ...runs[0] }, [])
    for (const { task, outcome } of [...runs.slice(1), runs[0]]) {
      const kind = task.job === 'j-cmd' ? 'command' : task.job === 'j-fn' ? 'function' : 'unknown'
      finished.inc({ outcome: outcome.status, kind })
      const ms = Number.isFinite(outcome.durationMs) ? Math.max(0, outcome.durationMs) : 0
      duration.observe({ kind, outcome: outcome.status }, ms / 1000)
    }

    const ours = (await metrics.scrape()).text
    const theirs = await reference.metrics()
    for (const name of ['gridnode_tasks_finished_total', 'gridnode_task_duration_seconds']) {
      expect(family(ours, name).length).toBeGreaterThan(0)
      expect(family(ours, name)).toEqual(family(theirs, name))
    }
    // A second scrape prints the same (the counts are cumulative, not drained by a scrape).
    const again = (await metrics.scrape()).text
    expect(family(again, 'gridnode_task_duration_seconds')).toEqual(
      family(theirs, 'gridnode_task_duration_seconds'),
    )
    expect(family(again, 'gridnode_tasks_finished_total')).toEqual(
      family(theirs, 'gridnode_tasks_finished_total'),
    )
    // The JSON form (getMetricsAsJSON) reads the histogram too.
    const json = await metrics.registry.getMetricsAsJSON()
    const h = json.find((m) => m.name === 'gridnode_task_duration_seconds')
    expect(h?.type).toBe('histogram')
    const values = (h?.values ?? []) as Array<{ metricName?: string; value: number }>
    const counted = values.filter((v) => v.metricName === 'gridnode_task_duration_seconds_count')
    expect(counted.reduce((a, v) => a + v.value, 0)).toBe(runs.length)
  })

  it('counts the final outcomes of owned tasks at every scrape, from zero', async () => {
    const metrics = new NodeMetrics()
    const owned = async () => family((await metrics.scrape()).text, 'gridnode_owned_task_results_total')
    expect(await owned()).toEqual([
      'gridnode_owned_task_results_total{outcome="failed"} 0',
      'gridnode_owned_task_results_total{outcome="ok"} 0',
    ])
    const result = (index: number, ok: boolean) => ({
      job: 'j',
      index,
      attempt: 1,
      ranOn: 'n',
      outcome: ok
        ? { status: 'ok' as const, value: new Uint8Array(), durationMs: 1 }
        : { status: 'threw' as const, error: 'e', durationMs: 1 },
    })
    const persist = (results: ReturnType<typeof result>[]): Command => ({
      type: 'persist-results',
      cause: 't',
      results,
    })
    metrics.observe({ type: 'tick', at: 0, cause: 't' } as SchedulerEvent, [
      persist([result(0, true), result(1, false), result(2, true)]),
    ])
    expect(await owned()).toEqual([
      'gridnode_owned_task_results_total{outcome="failed"} 1',
      'gridnode_owned_task_results_total{outcome="ok"} 2',
    ])
    metrics.observe({ type: 'tick', at: 1, cause: 't' } as SchedulerEvent, [persist([result(3, true)])])
    expect(await owned()).toEqual([
      'gridnode_owned_task_results_total{outcome="failed"} 1',
      'gridnode_owned_task_results_total{outcome="ok"} 3',
    ])
  })
})
