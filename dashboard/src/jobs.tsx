/** Jobs this node owns (progress, rate, failures, where they ran, cancel), and one job's failed tasks. */
import { useEffect, useState } from 'preact/hooks'
import type { JobRow } from '../../src/node/dashboard/types.ts'
import { jobColor, short } from './util.ts'
import { VirtualList } from './virtual.tsx'

async function cancel(id: string): Promise<void> {
  const res = await fetch(`/v1/jobs/${encodeURIComponent(id)}/cancel`, { method: 'POST' })
  if (!res.ok) alert(`cancel failed: HTTP ${res.status}`)
}

export function Jobs(props: { jobs: JobRow[]; selected?: string; onSelect: (id: string) => void }) {
  if (props.jobs.length === 0) return <p class="muted">no jobs yet: gridnode map / run, or the library</p>
  return (
    <div class="table jobs" data-testid="jobs">
      <div class="thead">
        <span>job</span>
        <span>progress</span>
        <span>tasks/s</span>
        <span>failed</span>
        <span>running</span>
        <span>ran on</span>
        <span />
      </div>
      {props.jobs.map((j) => {
        const pct = j.total === 0 ? 100 : Math.floor((100 * (j.done + j.failed)) / j.total)
        return (
          // biome-ignore lint/a11y/useSemanticElements: a grid row (with a cancel button inside) that selects its job
          <div
            class={`tr ${props.selected === j.id ? 'selected' : ''}`}
            key={j.id}
            data-testid="job"
            data-job={j.id}
            data-status={j.status}
            data-progress={pct}
            role="button"
            tabIndex={0}
            onClick={() => props.onSelect(j.id)}
            onKeyDown={(e) => e.key === 'Enter' && props.onSelect(j.id)}
          >
            <span title={`${j.id}: ${j.work}`}>
              <i class="swatch" style={{ background: jobColor(j.id) }} />
              {j.name} <small class="muted">{j.status}</small>
              {j.blocked && <div class="bad">{j.blocked}</div>}
            </span>
            <span class="progress">
              <span class="bar">
                <span style={{ width: `${pct}%`, background: jobColor(j.id) }} />
              </span>
              <span data-testid="job-progress">{pct}%</span> ({j.done + j.failed}/{j.total})
            </span>
            <span>{j.tasksPerSec.toFixed(1)}</span>
            <span class={j.failed > 0 ? 'bad' : ''}>{j.failed}</span>
            <span>{j.running}</span>
            <span class="nodes">
              {j.nodes.map((n) => (
                <span key={n.peer} title={n.peer}>
                  {n.peer === 'others' ? 'others' : short(n.peer)}: {n.tasks}
                </span>
              ))}
            </span>
            <span>
              {j.status === 'running' && (
                <button
                  type="button"
                  data-testid="cancel"
                  onClick={(e) => {
                    e.stopPropagation()
                    void cancel(j.id)
                  }}
                >
                  cancel
                </button>
              )}
            </span>
          </div>
        )
      })}
    </div>
  )
}

/** Characters of each error in the list (a line; the task's story shows it whole). */
const ERROR_CHARS = 300

interface Failure {
  index: number
  attempt: number | null
  node: string
  status: string
  error: string
}

export function JobPanel(props: { job: JobRow; onPick: (index: number) => void }) {
  const { job } = props
  const [data, setData] = useState<{ total: number; failures: Failure[] } | undefined>()
  useEffect(() => {
    let stop = false
    const load = async () => {
      const res = await fetch(`/v1/jobs/${encodeURIComponent(job.id)}/failures?errorChars=${ERROR_CHARS}`)
      if (res.ok && !stop) setData(await res.json())
    }
    void load()
    const t = setInterval(() => void load(), 2000)
    return () => {
      stop = true
      clearInterval(t)
    }
  }, [job.id])
  return (
    <div data-testid="job-panel">
      <h2>
        {job.name} <small class="muted">{job.id}</small>
      </h2>
      <p>
        {job.work} · {job.done} done, {job.failed} failed, {job.running} running of {job.total}
      </p>
      <h3>
        Failed tasks{' '}
        {data
          ? `(${data.total}${data.total > data.failures.length ? `, first ${data.failures.length}` : ''})`
          : ''}
      </h3>
      {data && data.failures.length === 0 && <p class="muted">none</p>}
      {data && data.failures.length > 0 && (
        <VirtualList
          items={data.failures}
          rowHeight={26}
          height={260}
          testid="failures"
          row={(f) => (
            // biome-ignore lint/a11y/useSemanticElements: a row of the virtual list that opens the task
            <div
              class="tr failure"
              role="button"
              tabIndex={0}
              onClick={() => props.onPick(f.index)}
              onKeyDown={(e) => e.key === 'Enter' && props.onPick(f.index)}
            >
              <span>#{f.index}</span>
              <code title={f.node}>{short(f.node)}</code>
              <span class="bad">{f.status}</span>
              <span class="error" title={f.error}>
                {f.error}
              </span>
            </div>
          )}
        />
      )}
    </div>
  )
}
