/**
 * The task stream (Dask's): one lane per node and slot, a bar per task run,
 * coloured by job, over the last WINDOW_MS. Drawn on a canvas from a bounded
 * buffer of recent runs; lanes are packed per node (first free lane).
 */
import { useEffect, useRef } from 'preact/hooks'
import type { MemberRow, TaskRunRow } from '../../src/node/dashboard/types.ts'
import { jobColor, short } from './util.ts'

export const WINDOW_MS = 60_000
const MAX_RUNS = 40_000
const LANE_PX = 6
const LABEL_PX = 120

export class StreamBuffer {
  runs: TaskRunRow[] = []
  skipped = 0

  add(runs: TaskRunRow[], skipped: number, now: number): void {
    this.skipped += skipped
    if (runs.length > 0) this.runs.push(...runs)
    const cutoff = now - WINDOW_MS
    let drop = 0
    while (drop < this.runs.length && this.runs[drop].e < cutoff) drop++
    drop = Math.max(drop, this.runs.length - MAX_RUNS)
    if (drop > 0) this.runs = this.runs.slice(drop)
  }
}

interface Placed {
  run: TaskRunRow
  lane: number
}

interface Layout {
  nodes: Array<{ peer: string; first: number; lanes: number; runs: number }>
  placed: Placed[]
  lanes: number
}

/** Packs each node's runs into lanes: a run takes the first lane free at its start. */
export function layout(runs: TaskRunRow[], members: MemberRow[]): Layout {
  const byNode = new Map<string, TaskRunRow[]>()
  for (const r of runs) {
    const list = byNode.get(r.n)
    if (list) list.push(r)
    else byNode.set(r.n, [r])
  }
  const order = members.map((m) => m.peer).filter((p) => byNode.has(p))
  for (const p of byNode.keys()) if (!order.includes(p)) order.push(p)
  const nodes: Layout['nodes'] = []
  const placed: Placed[] = []
  let first = 0
  for (const peer of order) {
    const list = byNode
      .get(peer)!
      .slice()
      .sort((a, b) => a.s - b.s)
    const ends: number[] = []
    for (const run of list) {
      let lane = ends.findIndex((end) => end <= run.s)
      if (lane < 0) {
        lane = ends.length < 64 ? ends.length : ends.indexOf(Math.min(...ends))
        if (lane === ends.length) ends.push(run.e)
      }
      ends[lane] = run.e
      placed.push({ run, lane: first + lane })
    }
    nodes.push({ peer, first, lanes: ends.length, runs: list.length })
    first += ends.length + 1
  }
  return { nodes, placed, lanes: first }
}

export function TaskStream(props: {
  buffer: StreamBuffer
  members: MemberRow[]
  now: number
  onPick: (job: string, index: number) => void
}) {
  const canvas = useRef<HTMLCanvasElement>(null)
  const lay = layout(props.buffer.runs, props.members)
  const height = Math.max(40, Math.min(600, lay.lanes * LANE_PX))
  const scale = Math.max(1, Math.ceil((lay.lanes * LANE_PX) / 600))
  useEffect(() => {
    const c = canvas.current
    if (c === null) return
    const width = c.clientWidth || 900
    c.width = width
    c.height = height
    const g = c.getContext('2d')
    if (g === null) return
    g.clearRect(0, 0, width, height)
    const from = props.now - WINDOW_MS
    const x = (t: number) => LABEL_PX + ((t - from) / WINDOW_MS) * (width - LABEL_PX)
    const lanePx = LANE_PX / scale
    g.font = '11px system-ui, sans-serif'
    for (const n of lay.nodes) {
      g.fillStyle = '#eef1f5'
      g.fillRect(LABEL_PX, n.first * lanePx, width - LABEL_PX, n.lanes * lanePx)
      g.fillStyle = '#333'
      g.fillText(short(n.peer), 4, n.first * lanePx + Math.min(11, n.lanes * lanePx))
    }
    for (const p of lay.placed) {
      const x0 = Math.max(LABEL_PX, x(p.run.s))
      const x1 = Math.max(x0 + 1, x(p.run.e))
      g.fillStyle = p.run.ok ? jobColor(p.run.j) : '#d22'
      g.fillRect(x0, p.lane * lanePx, x1 - x0, Math.max(1, lanePx - 1))
    }
  })
  const pick = (e: MouseEvent) => {
    const c = canvas.current
    if (c === null) return
    const rect = c.getBoundingClientRect()
    const px = e.clientX - rect.left
    const lane = Math.floor((e.clientY - rect.top) / (LANE_PX / scale))
    const width = c.width
    const t = props.now - WINDOW_MS + ((px - LABEL_PX) / (width - LABEL_PX)) * WINDOW_MS
    const hit = lay.placed.find((p) => p.lane === lane && p.run.s <= t + 200 && p.run.e >= t - 200)
    if (hit) props.onPick(hit.run.j, hit.run.i)
  }
  return (
    <div>
      <canvas
        ref={canvas}
        class="stream"
        style={{ height: `${height}px` }}
        onClick={pick}
        data-testid="stream"
        data-nodes={lay.nodes.length}
        data-runs={lay.placed.length}
      />
      <p class="muted legend" data-testid="stream-legend">
        last {WINDOW_MS / 1000} s: {lay.placed.length} runs on {lay.nodes.length} nodes
        {lay.nodes.map((n) => (
          <span key={n.peer} data-testid="stream-node" data-peer={n.peer}>
            {' '}
            · {short(n.peer)}: {n.runs}
          </span>
        ))}
        {props.buffer.skipped > 0
          ? ` · ${props.buffer.skipped} runs not drawn (over the per-second cap)`
          : ''}
        {' · click a bar for its story'}
      </p>
    </div>
  )
}
