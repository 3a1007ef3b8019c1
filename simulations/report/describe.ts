/** What a run is about to do, printed at start (seed and every knob it produced), as VOPR does. */
import type { Built } from '../core/runner.ts'

export function describeModel(b: Built): string {
  const { spec, model } = b
  const cap = model.mesh.capacity()
  const w = model.work
  const f = model.faults
  const n = spec.network
  const count = (k: string) => f.events.filter((e) => e.kind === k).length
  const lines = [
    `scenario ${b.scenario.name} (${b.scenario.description})`,
    `  seed ${b.seed} -> mesh ${b.seeds.mesh}, work ${b.seeds.work}, faults ${b.seeds.faults}, net ${b.seeds.net}, loop ${b.seeds.loop}`,
    `  mesh: ${model.mesh.initial} nodes (+${model.mesh.size - model.mesh.initial} joining), ${cap.slots} slots, ` +
      `CPU speed ${cap.cpu.toFixed(0)} slot-units, ${cap.gpu.toFixed(1)} GPU units`,
    `  network: ${n.kind}${n.kind === 'regions' ? ` x${n.regions ?? 3}` : ''}, jitter ${n.jitter}, uplink ${n.uplinkMBps || 'unlimited'} MB/s, ` +
      `gossip ${n.gossip.mode === 'all' ? 'all-to-all' : `neighbourhood of ${n.gossip.peers}`}`,
    `  work: ${w.jobs.length} jobs, ${w.total} tasks, ${(w.bound.workMs / 1000).toFixed(0)} slot-s; lower bound ` +
      `${(w.bound.ms / 1000).toFixed(2)} s (work/speed ${(w.bound.workOverSpeedMs / 1000).toFixed(2)} s, ` +
      `GPU ${(w.bound.gpuWorkOverSpeedMs / 1000).toFixed(2)} s, chain ${(w.bound.chainMs / 1000).toFixed(2)} s)`,
    `  faults: loss ${spec.faults.loss} (detected after ${spec.faults.lossDetectMs} ms), ${count('crash')} crashes, ` +
      `${count('recover')} recoveries, ${count('leave')} leaves, ${count('join')} joins, ${count('cut')} partitions; ` +
      `safety phase ends at ${(f.safetyEndsAt / 1000).toFixed(2)} s`,
    `  checks: ${spec.check ?? 'sampled'}; step budget ${spec.stepBudget ?? 200_000_000}`,
  ]
  return lines.join('\n')
}
