/**
 * The task stream (Dask's): one lane per node and slot, a bar per task run,
 * coloured by job, over the last WINDOW_MS. Drawn on a canvas from a bounded
 * buffer of recent runs; lanes are packed per node (first free lane).
 */
import { useEffect, useRef } from 'preact/hooks'
import {
  type MemberRow,
  RUN_FIELDS,
  type RunColumns,
  type TaskRunRow,
} from '../../src/node/dashboard/types.ts'
import { jobColor, short } from './util.ts'

export const WINDOW_MS = 60_000
/** Runs kept (and drawn) at most: the window at 1,600 runs/s; past that the oldest go first. */
const MAX_RUNS = 100_000
/** Nodes named under the stream (the busiest). */
const LEGEND_NODES = 20
const LANE_PX = 6
const LABEL_PX = 120

/** A tick's runs (columns, times relative to its `now`) as rows. */
export function fromColumns(c: RunColumns, now: number): TaskRunRow[] {
  const out: TaskRunRow[] = new Array(c.runs.length / RUN_FIELDS)
  for (let k = 0, r = 0; k < c.runs.length; k += RUN_FIELDS, r++) {
    const s = now - c.runs[k + 3]
    out[r] = {
      j: c.jobs[c.runs[k]],
      i: c.runs[k + 1],
      n: c.nodes[c.runs[k + 2]],
      s,
      e: s + c.runs[k + 4],
      ok: c.runs[k + 5] === 1 ? 1 : 0,
    }
  }
  return out
}

/** A run with its lane within its node (placed once, when it arrives). */
export interface Placed {
  run: TaskRunRow
  lane: number
}

const MAX_LANES = 64

/**
 * The runs in the window, each placed in a lane of its node as it arrives
 * (the first lane free at its start; results arrive about in end order, so
 * a slot's runs follow each other in one lane). Nothing is re-sorted or
 * re-packed per tick: thousands of runs a second cost their own placing only.
 */
export class StreamBuffer {
  runs: Placed[] = []
  skipped = 0
  /** Per node: the end time of the last run in each lane. */
  private readonly ends = new Map<string, number[]>()

  add(runs: TaskRunRow[], skipped: number, now: number): void {
    this.skipped += skipped
    for (const run of runs) this.runs.push({ run, lane: this.place(run) })
    const cutoff = now - WINDOW_MS
    let drop = 0
    while (drop < this.runs.length && this.runs[drop].run.e < cutoff) drop++
    drop = Math.max(drop, this.runs.length - MAX_RUNS)
    if (drop > 0) this.runs = this.runs.slice(drop)
    // Lanes of nodes idle for a whole window start afresh.
    for (const [node, ends] of this.ends) if (ends.every((e) => e < cutoff)) this.ends.delete(node)
  }

  private place(run: TaskRunRow): number {
    let ends = this.ends.get(run.n)
    if (ends === undefined) {
      ends = []
      this.ends.set(run.n, ends)
    }
    let lane = -1
    for (let i = 0; i < ends.length; i++) {
      if (ends[i] <= run.s) {
        lane = i
        break
      }
    }
    if (lane < 0) {
      if (ends.length < MAX_LANES) lane = ends.length
      else {
        lane = 0
        for (let i = 1; i < ends.length; i++) if (ends[i] < ends[lane]) lane = i
      }
    }
    ends[lane] = Math.max(ends[lane] ?? 0, run.e)
    return lane
  }
}

interface Layout {
  nodes: Array<{ peer: string; first: number; lanes: number; runs: number }>
  /** The first lane of each node. */
  first: Map<string, number>
  lanes: number
}

/** Nodes in the members' order, each as tall as the lanes its runs in the window use: one pass. */
export function layout(runs: readonly Placed[], members: MemberRow[]): Layout {
  const byNode = new Map<string, { lanes: number; runs: number }>()
  for (const p of runs) {
    const n = byNode.get(p.run.n)
    if (n === undefined) byNode.set(p.run.n, { lanes: p.lane + 1, runs: 1 })
    else {
      n.runs++
      if (p.lane >= n.lanes) n.lanes = p.lane + 1
    }
  }
  const order = members.map((m) => m.peer).filter((p) => byNode.has(p))
  const listed = new Set(order)
  for (const p of byNode.keys()) if (!listed.has(p)) order.push(p)
  const nodes: Layout['nodes'] = []
  const first = new Map<string, number>()
  let at = 0
  for (const peer of order) {
    const n = byNode.get(peer)!
    nodes.push({ peer, first: at, lanes: n.lanes, runs: n.runs })
    first.set(peer, at)
    at += n.lanes + 1
  }
  return { nodes, first, lanes: at }
}

/** Colours as pixels (RGBA bytes in memory order, little-endian Uint32). */
function rgba(r: number, g: number, b: number): number {
  return ((255 << 24) | (b << 16) | (g << 8) | r) >>> 0
}
const LANE_BG = rgba(0xee, 0xf1, 0xf5)
const FAILED = rgba(0xdd, 0x22, 0x22)

/** jobColor's hsl(h 65% 50%) as a pixel, computed once per job. */
const colors = new Map<string, number>()
function rgbaOf(job: string): number {
  let c = colors.get(job)
  if (c === undefined) {
    if (colors.size > 1000) colors.clear()
    const h = Number(/hsl\((\d+)/.exec(jobColor(job))?.[1] ?? 0)
    const k = (n: number) => (n + h / 30) % 12
    const a = 0.65 * Math.min(0.5, 1 - 0.5)
    const f = (n: number) => Math.round(255 * (0.5 - a * Math.max(-1, Math.min(k(n) - 3, 9 - k(n), 1))))
    c = rgba(f(0), f(8), f(4))
    colors.set(job, c)
  }
  return c
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
    const from = props.now - WINDOW_MS
    const x = (t: number) => LABEL_PX + ((t - from) / WINDOW_MS) * (width - LABEL_PX)
    const lanePx = LANE_PX / scale
    // Tens of thousands of bars: written as pixels into one image, not one fillRect each
    // (in a software-rendered canvas that took tens of ms a tick).
    const img = g.createImageData(width, height)
    const px = new Uint32Array(img.data.buffer)
    const fill = (x0: number, x1: number, y0: number, y1: number, color: number) => {
      const a = Math.max(0, Math.floor(x0))
      const b = Math.min(width, Math.max(a + 1, Math.floor(x1)))
      const top = Math.max(0, Math.floor(y0))
      const bottom = Math.min(height, Math.max(top + 1, Math.floor(y1)))
      for (let y = top; y < bottom; y++) px.fill(color, y * width + a, y * width + b)
    }
    for (const n of lay.nodes) fill(LABEL_PX, width, n.first * lanePx, (n.first + n.lanes) * lanePx, LANE_BG)
    const barPx = Math.max(1, lanePx - 1)
    for (const p of props.buffer.runs) {
      const color = p.run.ok ? rgbaOf(p.run.j) : FAILED
      const y = (lay.first.get(p.run.n)! + p.lane) * lanePx
      fill(Math.max(LABEL_PX, x(p.run.s)), x(p.run.e), y, y + barPx, color)
    }
    g.putImageData(img, 0, 0)
    g.font = '11px system-ui, sans-serif'
    g.fillStyle = '#333'
    let lastLabel = -20
    for (const n of lay.nodes) {
      const y = n.first * lanePx + Math.min(11, Math.max(9, n.lanes * lanePx))
      if (y - lastLabel < 11) continue
      g.fillText(short(n.peer), 4, y)
      lastLabel = y
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
    const hit = props.buffer.runs.find(
      (p) => lay.first.get(p.run.n)! + p.lane === lane && p.run.s <= t + 200 && p.run.e >= t - 200,
    )
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
        data-runs={props.buffer.runs.length}
      />
      <p class="muted legend" data-testid="stream-legend">
        last {WINDOW_MS / 1000} s: {props.buffer.runs.length} runs on {lay.nodes.length} nodes
        {[...lay.nodes]
          .sort((a, b) => b.runs - a.runs)
          .slice(0, LEGEND_NODES)
          .map((n) => (
            <span key={n.peer} data-testid="stream-node" data-peer={n.peer}>
              {' '}
              · {short(n.peer)}: {n.runs}
            </span>
          ))}
        {lay.nodes.length > LEGEND_NODES ? ` · and ${lay.nodes.length - LEGEND_NODES} more nodes` : ''}
        {props.buffer.skipped > 0
          ? ` · ${props.buffer.skipped} runs not drawn (over the per-second cap)`
          : ''}
        {' · click a bar for its story'}
      </p>
    </div>
  )
}
