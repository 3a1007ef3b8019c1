/** One task: where it stands, each member's reason it cannot take it now, and its story (gridnode why). */
import { useEffect, useState } from 'preact/hooks'
import { short } from './util.ts'

interface Why {
  known: string
  state?: string
  attempt?: number
  holder?: string
  queued?: { ahead: number; others: number }
  runningHere?: boolean
  waitingFor?: number[]
  story: Array<{
    at: number
    cause: string
    attempt: number
    from: string
    to: string
    node?: string
    fromNode?: string
    note?: string
  }>
  members: Array<{ peer: string; canTake: boolean; kind: string; reason: string }>
  stored?: { ok: boolean; error: string | null; ranOn: string; durationMs: number }
}

export function TaskPanel(props: { job: string; index: number; onClose: () => void }) {
  const [why, setWhy] = useState<Why | string | undefined>()
  useEffect(() => {
    let stop = false
    const load = async () => {
      const res = await fetch(`/v1/jobs/${encodeURIComponent(props.job)}/tasks/${props.index}/story`)
      if (stop) return
      setWhy(res.ok ? ((await res.json()) as Why) : `HTTP ${res.status}`)
    }
    void load()
    const t = setInterval(() => void load(), 2000)
    return () => {
      stop = true
      clearInterval(t)
    }
  }, [props.job, props.index])
  return (
    <div data-testid="task-panel">
      <h2>
        Task {props.index} <small class="muted">of {props.job}</small>{' '}
        <button type="button" onClick={props.onClose}>
          close
        </button>
      </h2>
      {why === undefined && <p class="muted">loading…</p>}
      {typeof why === 'string' && <p class="bad">{why}</p>}
      {typeof why === 'object' && <WhyView why={why} />}
    </div>
  )
}

function where(w: Why): string {
  if (w.known === 'unknown') return 'not known here (the job was pruned, or its story was not kept)'
  if (w.known === 'finished')
    return w.stored
      ? `finished: ${w.stored.ok ? 'ok' : w.stored.error} on ${short(w.stored.ranOn)}`
      : 'finished'
  switch (w.state) {
    case 'waiting':
      return `waiting for dependencies ${w.waitingFor?.join(', ')}`
    case 'local':
      return w.runningHere
        ? 'running on this node'
        : `queued here behind ${w.queued?.ahead ?? 0} tasks of its job (${w.queued?.others ?? 0} others queued)`
    case 'remote':
      return `held by ${short(w.holder ?? '?')} (queued or running there)`
    case 'doubt':
      return 'in doubt after a restart: waiting for a holder to claim it'
    default:
      return w.state ?? ''
  }
}

function WhyView(props: { why: Why }) {
  const w = props.why
  return (
    <div>
      <p data-testid="task-where">
        <b>{where(w)}</b>
        {w.attempt !== undefined ? ` · attempt ${w.attempt}` : ''}
      </p>
      {w.members.length > 0 && (
        <ul class="reasons">
          {w.members.map((m) => (
            <li key={m.peer} class={m.canTake ? 'ok' : ''}>
              <code title={m.peer}>{short(m.peer)}</code>: {m.reason}
            </li>
          ))}
        </ul>
      )}
      <table class="story" data-testid="story">
        <thead>
          <tr>
            <th>time</th>
            <th>attempt</th>
            <th>move</th>
            <th>node</th>
            <th>why</th>
            <th>cause</th>
          </tr>
        </thead>
        <tbody>
          {w.story.map((e, i) => (
            <tr key={i}>
              <td>{new Date(e.at).toLocaleTimeString()}</td>
              <td>{e.attempt}</td>
              <td>
                {e.from} → {e.to}
              </td>
              <td>
                {e.fromNode ? `${short(e.fromNode)} → ` : ''}
                {e.node ? short(e.node) : ''}
              </td>
              <td>{e.note ?? ''}</td>
              <td>
                <code>{e.cause}</code>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  )
}
