/** The demo's figures: pi from the tasks' counts, and per node the tasks it ran, its steals and its busy time. */
import type { TaskResultOf } from '../../src/client/job.ts'

export interface NodeStats {
  name: string
  peerId: string
  /** The daemon's process id (gone once the demo ends). */
  pid: number
  slots: number
  /** From the node's /v1/status scheduler stats. */
  tasksStolen: number
  stealsGranted: number
}

export interface DemoReport {
  job: string
  /** The temporary directory holding every node's data dir (removed once the demo ends). */
  dataRoot: string
  pi: number
  error: number
  samples: number
  meshMs: number
  wallMs: number
  tasksPerSecond: number
  nodes: Array<NodeStats & { tasks: number; busyMs: number; utilisation: number }>
}

export function summarize(o: {
  job: string
  dataRoot: string
  meshMs: number
  wallMs: number
  counts: Array<{ inside: number; samples: number }>
  records: TaskResultOf<unknown>[]
  nodes: NodeStats[]
}): DemoReport {
  const inside = o.counts.reduce((s, c) => s + c.inside, 0)
  const samples = o.counts.reduce((s, c) => s + c.samples, 0)
  const pi = (4 * inside) / samples
  const nodes = o.nodes.map((n) => {
    const mine = o.records.filter((r) => r.ranOn === n.peerId)
    const busyMs = mine.reduce((s, r) => s + (r.durationMs ?? 0), 0)
    const utilisation = o.wallMs > 0 ? Math.min(1, busyMs / (o.wallMs * n.slots)) : 0
    return { ...n, tasks: mine.length, busyMs, utilisation }
  })
  return {
    job: o.job,
    dataRoot: o.dataRoot,
    pi,
    error: pi - Math.PI,
    samples,
    meshMs: Math.round(o.meshMs),
    wallMs: Math.round(o.wallMs),
    tasksPerSecond: o.wallMs > 0 ? (o.counts.length * 1000) / o.wallMs : 0,
    nodes,
  }
}
