/**
 * Trust policy as data: whether a node accepts a job's tasks (by owner, work
 * kind and GPU use), why not, and the blocked reason an owner shows when no
 * node in the mesh will take a job. Pure functions over `Accepts`.
 */
import type { Accepts, Access, JobSpec, NodePolicy, PeerKey } from './types.ts'

export const ACCEPT_ALL: Access = { all: true, peers: [] }

/** Accepts everything from everyone (the default, and what an advert without `accepts` means). */
export const ACCEPTS_ALL: Accepts = {
  v: 1,
  foreign: true,
  reason: '',
  function: ACCEPT_ALL,
  command: ACCEPT_ALL,
  gpu: ACCEPT_ALL,
}

/** No owner policy in force: foreign tasks may use every slot. */
export function openPolicy(slots: number): NodePolicy {
  return { accepts: ACCEPTS_ALL, foreignSlots: slots, suspended: false, handBackAfterMs: 120_000 }
}

/** A peer ID shortened for messages (as the CLI prints them): 12D3Ko…a1b2c3. */
export function shortPeer(peer: PeerKey): string {
  return peer.length > 16 ? `${peer.slice(0, 6)}…${peer.slice(-6)}` : peer
}

function allows(a: Access, owner: PeerKey): boolean {
  return a.all || a.peers.includes(owner)
}

function listed(a: Access): string {
  return a.peers.length === 0 ? 'none' : `[${a.peers.map(shortPeer).join(', ')}]`
}

/** Why a node with policy `a` refuses tasks of `job`, or undefined when it accepts them. */
export function refusal(a: Accepts | undefined, job: JobSpec): string | undefined {
  if (a === undefined) return undefined
  if (!a.foreign) return a.reason || 'takes no tasks from other nodes'
  const kind = job.work.kind
  if (kind === 'function' || kind === 'command') {
    const access = a[kind]
    if (!allows(access, job.owner)) return `policy allows ${kind} tasks from ${listed(access)}`
  }
  if (job.resources.gpu > 0 && !allows(a.gpu, job.owner))
    return `policy allows GPU tasks from ${listed(a.gpu)}`
  return undefined
}

export function accepts(a: Accepts | undefined, job: JobSpec): boolean {
  return refusal(a, job) === undefined
}

/** What kind of task a job has, for messages ("command tasks", "GPU command tasks"). */
export function taskWords(job: JobSpec): string {
  return `${job.resources.gpu > 0 ? 'GPU ' : ''}${job.work.kind} tasks`
}

/**
 * The blocked reason when every node big enough for the job refuses it:
 * "no node accepts command tasks from …ab12cd: …ef34gh: policy allows command
 * tasks from [...]; …ij56kl: no sandbox". Empty when one accepts.
 */
export function policyBlockReason(job: JobSpec, refusals: Array<{ peer: PeerKey; reason: string }>): string {
  if (refusals.length === 0) return ''
  const each = refusals.map((r) => `${shortPeer(r.peer)}: ${r.reason}`).join('; ')
  return `no node accepts ${taskWords(job)} from ${shortPeer(job.owner)}: ${each}`
}

/** A stable string for an Accepts (to notice changes). */
export function acceptsSignature(a: Accepts | undefined): string {
  if (a === undefined) return '*'
  const acc = (x: Access) => (x.all ? '*' : x.peers.join(','))
  return `${a.foreign ? 1 : 0}|${a.reason}|${acc(a.function)}|${acc(a.command)}|${acc(a.gpu)}`
}
