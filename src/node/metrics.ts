/**
 * Prometheus metrics of one daemon (prom-client): what the scheduler did
 * (tasks run, failed, stolen, re-queued, refused by policy; steals tried and
 * granted), what is queued per resource class, how long tasks ran, bytes
 * moved for results and blobs, the members in view; libp2p's own metrics
 * (@libp2p/prometheus-metrics, given this registry in create-node.ts) and
 * the process's (prom-client's default collectors, registered by libp2p's).
 *
 * Served at /metrics on the local API (token required) and, with
 * `--metrics <host:port>`, alone on its own address for a scraper.
 */
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { Counter, Gauge, type Histogram, Registry } from 'prom-client'
import type { SchedulerStats } from '../scheduler/runtime.ts'
import type { Command, FinishedRun, SchedulerAdvert, SchedulerEvent } from '../scheduler/types.ts'
import { type ApiServer, STREAMED } from './api.ts'

/** What the metrics read at each scrape. */
export interface MetricSources {
  stats(): SchedulerStats & { refusedBatches?: number }
  advert(): SchedulerAdvert
  members(): number
  connections(): number
  /** Ed25519 checks of custody links run so far (links remembered as verified are not checked again). */
  linkVerifications?(): number
}

type StatName = keyof SchedulerStats

/** Cumulative scheduler counters, exported as counters read at scrape time. */
const STAT_COUNTERS: Array<[string, StatName, string]> = [
  ['gridnode_tasks_run_total', 'tasksRun', 'Tasks this node started (any owner).'],
  ['gridnode_tasks_stolen_total', 'tasksStolen', 'Tasks this node took from other nodes by stealing.'],
  ['gridnode_tasks_given_total', 'tasksGiven', 'Tasks this node handed to thieves.'],
  ['gridnode_tasks_requeued_total', 'requeued', 'Tasks of jobs owned here re-queued with a new attempt.'],
  [
    'gridnode_tasks_refused_by_policy_total',
    'policyRefused',
    "Pushed batches and stolen tasks this node's trust or owner policy refused.",
  ],
  ['gridnode_tasks_returned_total', 'returned', 'Tasks this node handed back to their owners unrun.'],
  ['gridnode_tasks_handed_back_total', 'handedBack', 'Tasks of jobs owned here that a holder handed back.'],
  ['gridnode_tasks_backups_total', 'backups', 'Tail backup copies started by this owner.'],
  ['gridnode_steal_attempts_total', 'stealsSent', 'Steal requests this node sent.'],
  ['gridnode_steal_successes_total', 'stealsGranted', 'Steal requests answered with tasks.'],
  ['gridnode_steals_empty_total', 'stealsEmpty', 'Steal requests answered empty, or failed.'],
  ['gridnode_pushes_total', 'pushes', 'Batches this owner pushed to idle peers.'],
  ['gridnode_duplicate_results_total', 'duplicateResults', 'Results for tasks already final (dropped).'],
  ['gridnode_refused_results_total', 'refusedResults', 'Results from nodes that never held the task.'],
  ['gridnode_refused_claims_total', 'refusedClaims', 'Lease claims that could not be traced to the owner.'],
]

const DURATION_BUCKETS_S = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30, 60, 300, 1800]
/** Jobs whose kind of work is remembered for the tasks that end here (the oldest is forgotten first). */
const MAX_TRACKED_JOBS = 10_000

export class NodeMetrics {
  readonly registry = new Registry()
  private sources?: MetricSources
  private readonly jobs: Counter<'status'>
  private readonly resultBytes: Counter<'direction'>
  private readonly blobBytes: Counter<'direction'>
  /** Kind of work by job id, learnt from run-task commands (one lookup per task, no per-task entry). */
  private readonly kinds = new Map<string, string>()
  /** Runs that ended here, per outcome and kind: counted here, read by prom-client at each scrape. */
  private readonly runs = new RunSeries()
  /** Final outcomes of tasks of jobs owned here, read by prom-client at each scrape. */
  private readonly owned = { ok: 0, failed: 0 }

  constructor() {
    const registers = [this.registry]
    for (const [name, stat, help] of STAT_COUNTERS) {
      const metrics = this
      new Counter({
        name,
        help,
        registers,
        collect() {
          const s = metrics.sources?.stats()
          this.reset()
          if (s !== undefined) this.inc(s[stat])
        },
      })
    }
    // Counted per run in plain numbers: prom-client hashes and checks the labels on every inc and
    // observe, labelled children included (0.5-0.7 us a run in a micro-benchmark; with 4 busy
    // daemons its counter's inc alone was 3.6% of a thief's main thread in perf). The counts reach
    // prom-client when it is scraped.
    const runs = this.runs
    new Counter({
      name: 'gridnode_tasks_finished_total',
      help: 'Runs that ended on this node, by outcome (ok, threw, timeout, crashed, rejected, returned) and work kind.',
      labelNames: ['outcome', 'kind'],
      registers,
      collect() {
        this.reset()
        for (const r of runs.all()) this.inc(r.labels, r.count)
      },
    })
    this.registry.registerMetric(
      new DurationHistogram(
        'gridnode_task_duration_seconds',
        'Run time of tasks on this node, by work kind and outcome.',
        runs,
      ) as unknown as Histogram,
    )
    const owned = this.owned
    new Counter({
      name: 'gridnode_owned_task_results_total',
      help: 'Final outcomes of tasks of jobs owned here (ok, failed), wherever they ran.',
      labelNames: ['outcome'],
      registers,
      collect() {
        this.reset()
        for (const outcome of ['ok', 'failed'] as const) this.inc({ outcome }, owned[outcome])
      },
    })
    this.jobs = new Counter({
      name: 'gridnode_jobs_total',
      help: 'Jobs owned here: submitted, and finished by status (done, failed, cancelled).',
      labelNames: ['status'],
      registers,
    })
    this.resultBytes = new Counter({
      name: 'gridnode_result_bytes_total',
      help: 'Bytes of result values sent to owners (resends included) and received as owner.',
      labelNames: ['direction'],
      registers,
    })
    this.blobBytes = new Counter({
      name: 'gridnode_blob_bytes_total',
      help: 'Bytes of blobs (code bundles, files) fetched from peers and served to them.',
      labelNames: ['direction'],
      registers,
    })
    for (const direction of ['sent', 'received']) this.resultBytes.inc({ direction }, 0)
    for (const direction of ['fetched', 'served']) this.blobBytes.inc({ direction }, 0)
    this.gauges(registers)
  }

  private gauges(registers: Registry[]): void {
    const metrics = this
    const gauge = (name: string, help: string, read: (s: MetricSources) => number) =>
      new Gauge({
        name,
        help,
        registers,
        collect() {
          if (metrics.sources !== undefined) this.set(read(metrics.sources))
        },
      })
    gauge('gridnode_members', 'Members of the mesh this node hears adverts from (itself excluded).', (s) =>
      s.members(),
    )
    gauge('gridnode_connections', 'Open libp2p connections.', (s) => s.connections())
    new Counter({
      name: 'gridnode_custody_link_verifications_total',
      help: "Signatures of custody hand-offs this owner checked (each link once; a lease's or result's budget bounds them).",
      registers,
      collect() {
        this.reset()
        this.inc(metrics.sources?.linkVerifications?.() ?? 0)
      },
    })
    gauge('gridnode_slots', 'CPU task slots of this node.', (s) => s.advert().slots)
    gauge('gridnode_slots_free', 'CPU task slots free for others now.', (s) => s.advert().freeSlots)
    gauge('gridnode_tasks_running', 'Tasks running on this node now.', (s) => s.advert().running)
    gauge('gridnode_gpus_free', 'Whole GPUs free now.', (s) => s.advert().freeGpus)
    new Gauge({
      name: 'gridnode_queue_depth',
      help: 'Ready tasks queued on this node, by resource class (cpu slots, gpus, memory MB per task).',
      labelNames: ['cpu', 'gpu', 'memory_mb'],
      registers,
      collect() {
        this.reset()
        for (const c of metrics.sources?.advert().ready ?? []) {
          const r = c.resources
          this.set({ cpu: String(r.cpu), gpu: String(r.gpu), memory_mb: String(r.memoryMB) }, c.count)
        }
      },
    })
  }

  attach(sources: MetricSources): void {
    this.sources = sources
  }

  private ran({ task, outcome }: FinishedRun): void {
    this.runs.add(outcome.status, this.kinds.get(task.job) ?? 'unknown', outcome.durationMs / 1000)
  }

  /** One scheduler step: the event the driver fed and the commands it got back. */
  observe(event: SchedulerEvent, commands: readonly Command[]): void {
    if (event.type === 'task-finished') {
      this.ran(event)
    } else if (event.type === 'tasks-finished') {
      for (const f of event.finished) this.ran(f)
    } else if (event.type === 'results-received') {
      this.resultBytes.inc({ direction: 'received' }, valueBytes(event.results))
    }
    for (const c of commands) {
      switch (c.type) {
        case 'run-task':
          if (!this.kinds.has(c.job.id)) {
            if (this.kinds.size >= MAX_TRACKED_JOBS) this.kinds.delete(this.kinds.keys().next().value!)
            this.kinds.set(c.job.id, c.job.work.kind)
          }
          break
        case 'send-results':
          this.resultBytes.inc({ direction: 'sent' }, valueBytes(c.results))
          break
        case 'persist-results':
          for (const r of c.results) {
            if (r.outcome.status === 'ok') this.owned.ok++
            else this.owned.failed++
          }
          break
        case 'job-finished':
          this.jobs.inc({ status: c.status })
          break
      }
    }
    if (event.type === 'job-submitted') this.jobs.inc({ status: 'submitted' })
  }

  /** Blob bytes moved by the blob protocol. */
  blob(direction: 'fetched' | 'served', bytes: number): void {
    this.blobBytes.inc({ direction }, bytes)
  }

  async scrape(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() }
  }
}

/** Runs of one outcome and kind: how many, their total time, how many per duration bucket. */
interface Series {
  readonly labels: { outcome: string; kind: string }
  count: number
  sum: number
  /** Runs per bucket: [i] counts durations in (DURATION_BUCKETS_S[i - 1], DURATION_BUCKETS_S[i]]. */
  readonly buckets: Float64Array
}

/** Run counts and durations by outcome and kind, in plain numbers. */
class RunSeries {
  private readonly byPair = new Map<string, Series>()
  /** The last series added to: runs ending together are mostly of one outcome and kind. */
  private last: Series | undefined

  add(outcome: string, kind: string, seconds: number): void {
    // Negative times count as 0 s, as before; prom-client's observe threw on NaN and infinities,
    // and a sum must never become one.
    if (!Number.isFinite(seconds) || seconds < 0) seconds = 0
    let s = this.last
    if (s === undefined || s.labels.outcome !== outcome || s.labels.kind !== kind) {
      const pair = `${outcome}/${kind}`
      s = this.byPair.get(pair)
      if (s === undefined) {
        s = {
          labels: { outcome, kind },
          count: 0,
          sum: 0,
          buckets: new Float64Array(DURATION_BUCKETS_S.length),
        }
        this.byPair.set(pair, s)
      }
      this.last = s
    }
    s.count++
    s.sum += seconds
    // Above the last bound a run counts only in +Inf (count).
    for (let i = 0; i < DURATION_BUCKETS_S.length; i++) {
      if (seconds <= DURATION_BUCKETS_S[i]) {
        s.buckets[i]++
        break
      }
    }
  }

  all(): Iterable<Series> {
    return this.byPair.values()
  }
}

/**
 * gridnode_task_duration_seconds as prom-client's registry reads a histogram (`get()`: name, help,
 * type and one value per bucket, sum and count, as prom-client's own Histogram exports them), from
 * RunSeries: prom-client has no way to add counted observations to its own.
 */
class DurationHistogram {
  readonly type = 'histogram'
  readonly aggregator = 'sum'
  readonly name: string
  readonly help: string
  private readonly runs: RunSeries

  constructor(name: string, help: string, runs: RunSeries) {
    this.name = name
    this.help = help
    this.runs = runs
  }

  get(): { name: string; help: string; type: string; aggregator: string; values: HistogramValue[] } {
    const values: HistogramValue[] = []
    const bucket = `${this.name}_bucket`
    for (const s of this.runs.all()) {
      // Labels in the order the Histogram this replaces printed them.
      const { kind, outcome } = s.labels
      let acc = 0
      for (let i = 0; i < DURATION_BUCKETS_S.length; i++) {
        acc += s.buckets[i]
        values.push({ labels: { le: DURATION_BUCKETS_S[i], kind, outcome }, value: acc, metricName: bucket })
      }
      values.push({ labels: { le: '+Inf', kind, outcome }, value: s.count, metricName: bucket })
      values.push({ labels: { kind, outcome }, value: s.sum, metricName: `${this.name}_sum` })
      values.push({ labels: { kind, outcome }, value: s.count, metricName: `${this.name}_count` })
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values }
  }

  /** Registry.resetMetrics() resets every metric; these counts are the daemon's since it started. */
  reset(): void {}
}

interface HistogramValue {
  labels: Record<string, string | number>
  value: number
  metricName: string
}

function valueBytes(results: ReadonlyArray<{ outcome: { status: string; value?: Uint8Array } }>): number {
  let n = 0
  for (const r of results) if (r.outcome.status === 'ok') n += r.outcome.value?.byteLength ?? 0
  return n
}

/** GET /metrics on the local API (the API's bearer token, like every route there). */
export function registerMetricsRoute(api: ApiServer, metrics: NodeMetrics): void {
  api.httpRoute('GET', '/metrics', async (req) => {
    const { contentType, text } = await metrics.scrape()
    req.res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
    req.res.end(text)
    return STREAMED
  })
}

/**
 * `--metrics <host:port>`: /metrics alone on its own address, without the API token
 * (loopback unless the operator names another address). Everything else is 404.
 */
export class MetricsServer {
  private server?: Server
  private readonly metrics: NodeMetrics

  constructor(metrics: NodeMetrics) {
    this.metrics = metrics
  }

  async listen(host: string, port: number): Promise<string> {
    const server = createServer((req, res) => {
      const path = (req.url ?? '/').split('?')[0]
      if (path !== '/metrics' || (req.method !== 'GET' && req.method !== 'HEAD')) {
        res.writeHead(404, { 'content-type': 'text/plain' }).end('only /metrics is served here\n')
        return
      }
      this.metrics.scrape().then(
        ({ contentType, text }) => {
          res.writeHead(200, { 'content-type': contentType, 'cache-control': 'no-store' })
          res.end(req.method === 'HEAD' ? undefined : text)
        },
        (err: Error) => res.writeHead(500, { 'content-type': 'text/plain' }).end(`${err.message}\n`),
      )
    })
    this.server = server
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject)
      server.listen(port, host, () => resolve())
    })
    const addr = server.address() as AddressInfo
    const h = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address
    return `http://${h}:${addr.port}/metrics`
  }

  async close(): Promise<void> {
    const server = this.server
    if (!server) return
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
}
