/**
 * Hand-written SVG charts (no dependency): line charts with optional log
 * axes and a per-node Gantt chart. Output is plain text, deterministic for
 * the same input.
 */

export interface Series {
  name: string
  points: Array<[number, number]>
  color?: string
  dashed?: boolean
}

export interface LineChart {
  title: string
  xLabel: string
  yLabel: string
  series: Series[]
  logX?: boolean
  logY?: boolean
  yMin?: number
  yMax?: number
  /** Horizontal reference lines (a target, the lower bound). */
  refs?: Array<{ y: number; label: string }>
  width?: number
  height?: number
}

export const COLORS: Record<string, string> = {
  gridnode: '#1b7837',
  central: '#c51b7d',
  'random-push': '#2166ac',
}
const PALETTE = ['#1b7837', '#c51b7d', '#2166ac', '#e08214', '#542788', '#b2182b', '#35978f', '#8c510a']

function esc(s: string): string {
  return s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;')
}

function fmt(x: number): string {
  if (x === 0) return '0'
  const a = Math.abs(x)
  if (a >= 1e6) return `${+(x / 1e6).toFixed(1)}M`
  if (a >= 1e4) return `${+(x / 1e3).toFixed(0)}k`
  if (a >= 1000) return `${+(x / 1e3).toFixed(1)}k`
  if (a >= 10) return `${+x.toFixed(0)}`
  if (a >= 1) return `${+x.toFixed(1)}`
  return `${+x.toFixed(2)}`
}

function ticks(lo: number, hi: number, log: boolean): number[] {
  if (log) {
    const out: number[] = []
    for (let e = Math.floor(Math.log10(lo)); e <= Math.ceil(Math.log10(hi)); e++) {
      const v = 10 ** e
      if (v >= lo * 0.999 && v <= hi * 1.001) out.push(v)
    }
    return out.length >= 2 ? out : [lo, hi]
  }
  const span = hi - lo || 1
  const step0 = span / 5
  const mag = 10 ** Math.floor(Math.log10(step0))
  const step = [1, 2, 2.5, 5, 10].map((k) => k * mag).find((s) => s >= step0) ?? step0
  const out: number[] = []
  for (let v = Math.ceil(lo / step) * step; v <= hi + step * 1e-9; v += step) out.push(+v.toPrecision(12))
  return out
}

export function lineChart(c: LineChart): string {
  const W = c.width ?? 820
  const H = c.height ?? 420
  const m = { l: 70, r: 250, t: 40, b: 55 }
  const pw = W - m.l - m.r
  const ph = H - m.t - m.b
  const xs = c.series.flatMap((s) => s.points.map((p) => p[0]))
  const ys = c.series.flatMap((s) => s.points.map((p) => p[1])).concat((c.refs ?? []).map((r) => r.y))
  let x0 = Math.min(...xs)
  let x1 = Math.max(...xs)
  let y0 = c.yMin ?? Math.min(0, ...ys)
  let y1 = c.yMax ?? Math.max(...ys) * 1.05
  if (c.logY) {
    y0 = c.yMin ?? 10 ** Math.floor(Math.log10(Math.min(...ys.filter((y) => y > 0))))
    y1 = c.yMax ?? 10 ** Math.ceil(Math.log10(Math.max(...ys)))
  }
  if (x0 === x1) {
    x0 -= 1
    x1 += 1
  }
  if (y0 === y1) y1 = y0 + 1
  const tx = (x: number) =>
    m.l + (c.logX ? (Math.log(x) - Math.log(x0)) / (Math.log(x1) - Math.log(x0)) : (x - x0) / (x1 - x0)) * pw
  const ty = (y: number) =>
    m.t +
    ph -
    (c.logY ? (Math.log(y) - Math.log(y0)) / (Math.log(y1) - Math.log(y0)) : (y - y0) / (y1 - y0)) * ph
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="12">`,
  )
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  out.push(`<text x="${m.l}" y="22" font-size="15" font-weight="bold">${esc(c.title)}</text>`)
  for (const v of ticks(x0, x1, c.logX ?? false)) {
    const x = tx(v).toFixed(1)
    out.push(`<line x1="${x}" y1="${m.t}" x2="${x}" y2="${m.t + ph}" stroke="#eee"/>`)
    out.push(`<text x="${x}" y="${m.t + ph + 16}" text-anchor="middle">${fmt(v)}</text>`)
  }
  for (const v of ticks(y0, y1, c.logY ?? false)) {
    const y = ty(v).toFixed(1)
    out.push(`<line x1="${m.l}" y1="${y}" x2="${m.l + pw}" y2="${y}" stroke="#eee"/>`)
    out.push(`<text x="${m.l - 6}" y="${(+y + 4).toFixed(1)}" text-anchor="end">${fmt(v)}</text>`)
  }
  out.push(`<rect x="${m.l}" y="${m.t}" width="${pw}" height="${ph}" fill="none" stroke="#999"/>`)
  out.push(`<text x="${m.l + pw / 2}" y="${H - 12}" text-anchor="middle">${esc(c.xLabel)}</text>`)
  out.push(
    `<text transform="translate(16 ${m.t + ph / 2}) rotate(-90)" text-anchor="middle">${esc(c.yLabel)}</text>`,
  )
  for (const r of c.refs ?? []) {
    const y = ty(r.y).toFixed(1)
    out.push(`<line x1="${m.l}" y1="${y}" x2="${m.l + pw}" y2="${y}" stroke="#555" stroke-dasharray="4 4"/>`)
    out.push(
      `<text x="${m.l + pw - 4}" y="${(+y - 4).toFixed(1)}" text-anchor="end" fill="#555">${esc(r.label)}</text>`,
    )
  }
  c.series.forEach((s, i) => {
    const color = s.color ?? COLORS[s.name] ?? PALETTE[i % PALETTE.length]
    const pts = s.points.map((p) => `${tx(p[0]).toFixed(1)},${ty(p[1]).toFixed(1)}`)
    const dash = s.dashed ? ' stroke-dasharray="6 3"' : ''
    out.push(`<polyline fill="none" stroke="${color}" stroke-width="2"${dash} points="${pts.join(' ')}"/>`)
    if (s.points.length <= 30)
      for (const p of pts)
        out.push(`<circle cx="${p.split(',')[0]}" cy="${p.split(',')[1]}" r="3" fill="${color}"/>`)
    const ly = m.t + 14 + i * 18
    out.push(
      `<line x1="${m.l + pw + 12}" y1="${ly - 4}" x2="${m.l + pw + 36}" y2="${ly - 4}" stroke="${color}" stroke-width="2"${dash}/>`,
    )
    out.push(`<text x="${m.l + pw + 42}" y="${ly}">${esc(s.name)}</text>`)
  })
  out.push('</svg>')
  return `${out.join('\n')}\n`
}

export interface GanttInput {
  title: string
  /** [node, lane, start, end, job, ok] */
  runs: Array<[number, number, number, number, number, number]>
  nodeLabels: string[]
  lanesPerNode: number[]
  t0: number
  t1: number
  lowerBoundAt?: number
}

export function gantt(g: GanttInput): string {
  const laneH = 10
  const m = { l: 60, r: 20, t: 40, b: 40 }
  const W = 900
  const pw = W - m.l - m.r
  const rowTop: number[] = []
  let y = m.t
  for (let n = 0; n < g.nodeLabels.length; n++) {
    rowTop.push(y)
    y += Math.max(1, g.lanesPerNode[n]) * laneH + 4
  }
  const H = y + m.b
  const tx = (t: number) => m.l + ((t - g.t0) / Math.max(1e-9, g.t1 - g.t0)) * pw
  const out: string[] = []
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${W}" height="${H}" viewBox="0 0 ${W} ${H}" font-family="sans-serif" font-size="11">`,
  )
  out.push(`<rect width="${W}" height="${H}" fill="white"/>`)
  out.push(`<text x="${m.l}" y="22" font-size="14" font-weight="bold">${esc(g.title)}</text>`)
  for (const v of ticks(0, g.t1 - g.t0, false)) {
    const x = tx(g.t0 + v).toFixed(1)
    out.push(`<line x1="${x}" y1="${m.t - 4}" x2="${x}" y2="${y}" stroke="#eee"/>`)
    out.push(`<text x="${x}" y="${y + 14}" text-anchor="middle">${fmt(v)} ms</text>`)
  }
  g.nodeLabels.forEach((label, n) => {
    out.push(`<text x="${m.l - 6}" y="${rowTop[n] + 9}" text-anchor="end">${esc(label)}</text>`)
  })
  for (const [node, lane, start, end, job, ok] of g.runs) {
    const x = tx(start)
    const w = Math.max(0.5, tx(end) - x)
    const color = PALETTE[job % PALETTE.length]
    const fill = ok ? color : 'none'
    const stroke = ok ? 'white' : color
    out.push(
      `<rect x="${x.toFixed(1)}" y="${rowTop[node] + lane * laneH}" width="${w.toFixed(1)}" height="${laneH - 1}" fill="${fill}" stroke="${stroke}" stroke-width="0.5"/>`,
    )
  }
  if (g.lowerBoundAt !== undefined) {
    const x = tx(g.lowerBoundAt).toFixed(1)
    out.push(`<line x1="${x}" y1="${m.t - 6}" x2="${x}" y2="${y}" stroke="#000" stroke-dasharray="4 3"/>`)
    out.push(`<text x="${x}" y="${m.t - 8}" text-anchor="middle">lower bound</text>`)
  }
  out.push(
    `<text x="${m.l}" y="${H - 6}" fill="#555">filled: completed run (colour = job); outline: cancelled or cut short by a crash</text>`,
  )
  out.push('</svg>')
  return `${out.join('\n')}\n`
}
