/**
 * The gridnode dashboard: the mesh, this node's jobs, the task stream and,
 * for a clicked job or task, its failures and its story. Everything arrives
 * from the daemon's own API (server-sent events once a second); the page
 * windows the stream and renders long lists virtually, so 100 members and
 * 100,000 tasks stay responsive.
 */
import { render } from 'preact'
import { useEffect, useState } from 'preact/hooks'
import type { Hello, JobRow, MemberRow, Tick } from '../../src/node/dashboard/types.ts'
import './style.css'
import { JobPanel, Jobs } from './jobs.tsx'
import { Flows, Members } from './mesh.tsx'
import { fromColumns, StreamBuffer, TaskStream } from './stream.tsx'
import { TaskPanel } from './task.tsx'
import { short } from './util.ts'

export interface Selection {
  job?: string
  task?: number
}

const buffer = new StreamBuffer()

function App() {
  const [hello, setHello] = useState<Hello | undefined>()
  const [tick, setTick] = useState<Tick | undefined>()
  const [online, setOnline] = useState(false)
  const [sel, setSel] = useState<Selection>({})

  useEffect(() => {
    const es = new EventSource('/v1/dashboard/events')
    es.addEventListener('hello', (e) => {
      setHello(JSON.parse((e as MessageEvent).data) as Hello)
      setOnline(true)
    })
    es.addEventListener('tick', (e) => {
      const t = JSON.parse((e as MessageEvent).data) as Tick
      buffer.add(fromColumns(t.stream, t.now), t.skipped, t.now)
      setTick(t)
    })
    es.onerror = () => setOnline(false)
    return () => es.close()
  }, [])

  if (hello === undefined || tick === undefined) return <p class="muted">connecting to the daemon…</p>
  const members: MemberRow[] = tick.members
  const jobs: JobRow[] = tick.jobs
  const job = jobs.find((j) => j.id === sel.job)
  return (
    <div class="page">
      <header>
        <h1>gridnode</h1>
        <span>
          mesh <b>{hello.mesh}</b> · node <code title={hello.self}>{short(hello.self)}</code> · v
          {hello.version}
        </span>
        <span class={online ? 'ok' : 'bad'} data-testid="connection">
          {online ? 'live' : 'disconnected'}
        </span>
      </header>
      <section>
        <h2>
          Mesh <small data-testid="member-count">{members.filter((m) => m.online).length} online</small>
        </h2>
        <Members members={members} />
        <Flows flows={tick.flows} members={members} />
      </section>
      <section>
        <h2>Jobs owned here</h2>
        <Jobs jobs={jobs} selected={sel.job} onSelect={(id) => setSel({ job: id })} />
      </section>
      <section>
        <h2>Task stream</h2>
        <TaskStream
          buffer={buffer}
          members={members}
          now={tick.now}
          onPick={(j, i) => setSel({ job: j, task: i })}
        />
      </section>
      {job !== undefined && (
        <section>
          <JobPanel job={job} onPick={(i) => setSel({ job: job.id, task: i })} />
        </section>
      )}
      {sel.job !== undefined && sel.task !== undefined && (
        <section>
          <TaskPanel job={sel.job} index={sel.task} onClose={() => setSel({ job: sel.job })} />
        </section>
      )}
    </div>
  )
}

const root = document.getElementById('app')!
root.textContent = ''
render(<App />, root)
