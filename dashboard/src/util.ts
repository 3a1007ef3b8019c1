/** Small formatting helpers shared by the page's parts. */

export function short(peer: string): string {
  return peer.length > 16 ? `${peer.slice(0, 6)}…${peer.slice(-6)}` : peer
}

/** A stable colour per job id. */
export function jobColor(job: string): string {
  let h = 2166136261
  for (let i = 0; i < job.length; i++) h = Math.imul(h ^ job.charCodeAt(i), 16777619)
  return `hsl(${(h >>> 0) % 360} 65% 50%)`
}

export function ago(ms: number | null): string {
  if (ms === null) return 'never'
  if (ms < 1000) return `${ms} ms`
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`
  return `${Math.round(ms / 60_000)} min`
}
