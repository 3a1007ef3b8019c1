/** The mesh: one row per member (virtual), and who takes work from whom right now. */
import type { FlowRow, MemberRow } from '../../src/node/dashboard/types.ts'
import { ago, short } from './util.ts'
import { VirtualList } from './virtual.tsx'

function gib(mb: number): string {
  return mb >= 1024 ? `${(mb / 1024).toFixed(1)} GiB` : `${Math.round(mb)} MiB`
}

function Slots(props: { m: MemberRow }) {
  const { m } = props
  const pct = m.slots === 0 ? 0 : (100 * m.busy) / m.slots
  return (
    <span
      class="slots"
      title={`${m.busy} busy, ${m.slots - m.busy} free, ${m.freeForOthers} offered to others`}
    >
      <span class="bar">
        <span style={{ width: `${pct}%` }} />
      </span>
      {m.busy}/{m.slots}
    </span>
  )
}

export function Members(props: { members: MemberRow[] }) {
  return (
    <div class="table members">
      <div class="thead">
        <span>node</span>
        <span>slots busy</span>
        <span>ready</span>
        <span>GPUs free</span>
        <span>memory free</span>
        <span>load</span>
        <span>policy</span>
        <span>advert</span>
        <span>ping</span>
      </div>
      <VirtualList
        items={props.members}
        rowHeight={26}
        height={320}
        testid="members"
        row={(m) => (
          <div class={`tr ${m.online ? '' : 'offline'}`} data-testid="member" data-peer={m.peer}>
            <span title={m.peer}>
              <code>{short(m.peer)}</code>
              {m.self ? ' (this node)' : ''}
            </span>
            <Slots m={m} />
            <span>{m.ready}</span>
            <span>{m.gpus === 0 ? '–' : `${m.gpusFree}/${m.gpus}`}</span>
            <span>{m.online ? `${gib(m.memoryFreeMB)} / ${gib(m.memoryTotalMB)}` : '–'}</span>
            <span>{m.online ? m.load1.toFixed(2) : '–'}</span>
            <span class={`policy ${m.policy}`} title={m.policyNote}>
              {m.policy}
            </span>
            <span>{ago(m.advertAgeMs)}</span>
            <span>{m.pingMs === null ? '–' : `${m.pingMs.toFixed(1)} ms`}</span>
          </div>
        )}
      />
    </div>
  )
}

export function Flows(props: { flows: FlowRow[] }) {
  if (props.flows.length === 0) return <p class="muted">no steals or pushes in the last 10 s</p>
  const flows = [...props.flows].sort((a, b) => b.tasks - a.tasks).slice(0, 50)
  return (
    <ul class="flows" data-testid="flows">
      {flows.map((f) => (
        <li key={`${f.kind}${f.from}${f.to}`}>
          {f.kind === 'steal' ? (
            <>
              <code>{short(f.to)}</code> stole {f.tasks} tasks from <code>{short(f.from)}</code>
            </>
          ) : (
            <>
              <code>{short(f.from)}</code> pushed {f.tasks} tasks to <code>{short(f.to)}</code>
            </>
          )}{' '}
          <span class="muted">{ago(f.agoMs)} ago</span>
        </li>
      ))}
    </ul>
  )
}
