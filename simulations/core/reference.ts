/**
 * Offline reference schedules for a run's workload on its initial mesh, with
 * zero latency and perfect knowledge of when every slot frees, to tell how
 * much of a strategy's distance from the lower bound is the workload's own:
 *
 * - list: tasks in submit order, each to the slot that frees first (a
 *   perfect FIFO dispatcher that does not know task sizes);
 * - lpt: largest cost first, each to the slot that frees first (what a
 *   dispatcher that used the cost hints could do).
 *
 * Independent CPU and GPU tasks only (null when a job has dependencies).
 */
import type { Mesh } from '../model/mesh.ts'
import type { Workload } from '../model/workload.ts'

export interface Reference {
  listMs: number
  lptMs: number
}

export function referenceSchedules(work: Workload, mesh: Mesh): Reference | null {
  for (let g = 0; g < work.total; g++) if (work.depCount[g] > 0) return null
  const cpu: number[] = []
  const gpu: number[] = []
  for (const job of work.jobs) {
    for (let i = 0; i < job.size; i++) (job.gpu ? gpu : cpu).push(job.base + i)
  }
  const t0 = work.firstSubmitAt
  const submit = (g: number) => work.jobs[work.jobOf[g]].submitAt - t0
  const list = Math.max(place(cpu, work, mesh, false, submit), place(gpu, work, mesh, true, submit))
  const bySize = (a: number, b: number) => work.cost[b] - work.cost[a] || a - b
  const lpt = Math.max(
    place([...cpu].sort(bySize), work, mesh, false, submit),
    place([...gpu].sort(bySize), work, mesh, true, submit),
  )
  return { listMs: list, lptMs: lpt }
}

/** Greedy: each task in order to the slot free first (ties: the faster). Returns the last finish. */
function place(
  tasks: number[],
  work: Workload,
  mesh: Mesh,
  onGpu: boolean,
  submit: (g: number) => number,
): number {
  if (tasks.length === 0) return 0
  const free: number[] = []
  const speed: number[] = []
  for (let i = 0; i < mesh.initial; i++) {
    const n = mesh.nodes[i]
    const k = onGpu ? n.gpus : n.slots
    for (let s = 0; s < k; s++) {
      free.push(0)
      speed.push(onGpu ? n.gpuSpeed : n.speed)
    }
  }
  const heap = new SlotHeap(free, speed)
  let end = 0
  for (const g of tasks) {
    const slot = heap.top()
    const start = Math.max(free[slot], submit(g))
    const finish = start + work.cost[g] / speed[slot]
    free[slot] = finish
    heap.siftDownTop()
    if (finish > end) end = finish
  }
  return end
}

class SlotHeap {
  private readonly h: number[]
  private readonly free: number[]
  private readonly speed: number[]

  constructor(free: number[], speed: number[]) {
    this.free = free
    this.speed = speed
    this.h = free.map((_, i) => i)
    for (let i = (this.h.length >> 1) - 1; i >= 0; i--) this.down(i)
  }

  top(): number {
    return this.h[0]
  }

  siftDownTop(): void {
    this.down(0)
  }

  private less(a: number, b: number): boolean {
    const fa = this.free[a]
    const fb = this.free[b]
    return (
      fa < fb || (fa === fb && (this.speed[a] > this.speed[b] || (this.speed[a] === this.speed[b] && a < b)))
    )
  }

  private down(i: number): void {
    const h = this.h
    const n = h.length
    for (;;) {
      const l = 2 * i + 1
      if (l >= n) return
      const r = l + 1
      let m = l
      if (r < n && this.less(h[r], h[l])) m = r
      if (!this.less(h[m], h[i])) return
      const t = h[m]
      h[m] = h[i]
      h[i] = t
      i = m
    }
  }
}
