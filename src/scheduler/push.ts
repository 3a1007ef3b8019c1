/**
 * Owner pushes: when this node has more of its own tasks queued than its own
 * slots will take next, it sends first batches to idle peers (free slots,
 * nothing ready, whose advert says it accepts the job) so a job ramps up
 * without waiting for steals. A peer pushed
 * to is not pushed to again until its advert changes, it still looks idle an
 * advert interval later, or a lease from it arrives while it holds nothing of ours.
 */
import type { Holder } from './holder.ts'
import type { Owner } from './owner.ts'
import type { PeerView } from './peers.ts'
import { accepts } from './policy.ts'
import type { Runtime } from './runtime.ts'
import { batchSize, toBatch } from './steal.ts'

export function pushToIdle(rt: Runtime, holder: Holder, owner: Owner, view: PeerView): void {
  if (view.pushable.size === 0) return
  // Keep one task per local slot for this node's next round.
  let surplus = holder.queue.ownSize - holder.pool.slots
  if (surplus <= 0) return
  for (const peer of view.pushable) {
    if (surplus <= 0) break
    view.pushed(peer, rt.now)
    const info = view.peers.get(peer)
    if (info === undefined || !info.idle) continue
    const a = info.advert
    const free = { cpu: a.freeSlots, gpu: a.freeGpus, memoryMB: a.freeMemoryMB }
    const n = Math.min(surplus, batchSize(a.freeSlots, holder.meanMs, a.meanTaskMs, rt.s))
    const spec = (job: string) => holder.spec(job)
    const taken = holder.take(n, free, true, (job) => {
      const s = spec(job)
      return s !== undefined && accepts(a.accepts, s)
    })
    // Not the tasks this peer failed before, nor a job it keeps failing (while another node can take them).
    const tasks = owner.withhold(peer, taken)
    if (tasks.length === 0) continue
    for (const t of tasks) owner.handedOff(t.jobId, t.index, t.attempt, peer, 'pushed')
    surplus -= tasks.length
    rt.stats.pushes++
    rt.emit({ type: 'push-batch', cause: rt.cause, to: peer, batch: toBatch(tasks) })
  }
}
