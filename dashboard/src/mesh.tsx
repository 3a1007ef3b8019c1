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

/** Who takes work from whom across the mesh (every member's adverts): a graph, then the busiest edges in words. */
export function Flows(props: { flows: FlowRow[]; members: MemberRow[] }) {
  if (props.flows.length === 0) return <p class="muted">no steals or pushes in the last 10 s</p>
  const flows = [...props.flows].sort((a, b) => b.tasks - a.tasks)
  return (
    <div class="flows-view">
      <FlowGraph flows={flows} members={props.members} />
      <ul class="flows" data-testid="flows">
        {flows.slice(0, 30).map((f) => (
          <li key={`${f.kind}${f.from}${f.to}`} title={`reported by ${f.seenBy.map(short).join(', ')}`}>
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
        {flows.length > 30 && <li class="muted">and {flows.length - 30} more edges</li>}
      </ul>
    </div>
  )
}

const GRAPH_PX = 360
/** Members named on the graph at most (the busiest); the rest are dots with a tooltip. */
const LABELS = 16

/**
 * Members on a circle (in the members' order), an arrow per edge in the
 * direction the tasks went: blue for steals, orange for pushes, wider for
 * more tasks. Only members with edges are labelled.
 */
function FlowGraph(props: { flows: FlowRow[]; members: MemberRow[] }) {
  const peers = props.members.map((m) => m.peer)
  for (const f of props.flows) {
    if (!peers.includes(f.from)) peers.push(f.from)
    if (!peers.includes(f.to)) peers.push(f.to)
  }
  const r = GRAPH_PX / 2 - 70
  const c = GRAPH_PX / 2
  const at = new Map<string, [number, number]>()
  peers.forEach((p, i) => {
    const a = (2 * Math.PI * i) / peers.length - Math.PI / 2
    at.set(p, [c + r * Math.cos(a), c + r * Math.sin(a)])
  })
  const busy = new Set(props.flows.flatMap((f) => [f.from, f.to]))
  const moved = new Map<string, number>()
  for (const f of props.flows) {
    moved.set(f.from, (moved.get(f.from) ?? 0) + f.tasks)
    moved.set(f.to, (moved.get(f.to) ?? 0) + f.tasks)
  }
  const labelled = [...moved]
    .sort((a, b) => b[1] - a[1])
    .slice(0, LABELS)
    .map(([p]) => p)
  const most = Math.max(...props.flows.map((f) => f.tasks), 1)
  return (
    <svg
      class="flow-graph"
      width={GRAPH_PX}
      height={GRAPH_PX}
      viewBox={`0 0 ${GRAPH_PX} ${GRAPH_PX}`}
      data-testid="flow-graph"
      role="img"
      aria-label="who takes work from whom"
    >
      <defs>
        <marker
          id="arrow"
          viewBox="0 0 10 10"
          refX="10"
          refY="5"
          markerWidth="5"
          markerHeight="5"
          orient="auto"
        >
          <path d="M0,0 L10,5 L0,10 z" fill="#555" />
        </marker>
      </defs>
      {peers.map((p) => {
        const [x, y] = at.get(p)!
        return (
          <circle key={p} cx={x} cy={y} r={busy.has(p) ? 4 : 2} class={busy.has(p) ? 'node busy' : 'node'} />
        )
      })}
      {props.flows.map((f) => {
        // Tasks go from `from` to `to` (the thief for a steal, the target for a push).
        const [x1, y1] = at.get(f.from)!
        const [x2, y2] = at.get(f.to)!
        const len = Math.hypot(x2 - x1, y2 - y1) || 1
        const k = (len - 6) / len
        return (
          <line
            key={`${f.kind}${f.from}${f.to}`}
            x1={x1}
            y1={y1}
            x2={x1 + (x2 - x1) * k}
            y2={y1 + (y2 - y1) * k}
            class={`edge ${f.kind}`}
            stroke-width={1 + 3 * Math.sqrt(f.tasks / most)}
            marker-end="url(#arrow)"
            data-testid="flow-edge"
            data-from={f.from}
            data-to={f.to}
            data-kind={f.kind}
            data-tasks={f.tasks}
            data-seen-by={f.seenBy.join(' ')}
          >
            <title>
              {f.kind === 'steal'
                ? `${short(f.to)} stole ${f.tasks} from ${short(f.from)}`
                : `${short(f.from)} pushed ${f.tasks} to ${short(f.to)}`}
            </title>
          </line>
        )
      })}
      {labelled.map((p) => {
        const [x, y] = at.get(p)!
        const [dx, dy] = [x - c, y - c]
        const d = Math.hypot(dx, dy) || 1
        return (
          <text
            key={p}
            x={x + (dx / d) * 8}
            y={y + (dy / d) * 8 + 3}
            text-anchor={dx > 5 ? 'start' : dx < -5 ? 'end' : 'middle'}
            class="label"
          >
            {short(p)}
          </text>
        )
      })}
    </svg>
  )
}
