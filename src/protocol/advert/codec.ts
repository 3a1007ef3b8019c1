/**
 * The capacity advert gossiped on `gridnode/<mesh>/capacity/1`: a hint about
 * what a node can run, never custody. Gossipsub (StrictSign) has verified the
 * signature of `msg.from`; here we check the bytes, the mesh, that the signer
 * is the peer the advert is about, freshness and replay.
 */

import type { GpuInfo, SchedulerAdvert } from '../../domain/types.ts'
import { RemoteProtocolError } from '../../errors.ts'
import { fields, messageCodec } from '../message.ts'
import { MAX_GPUS, MAX_PEER_ID_LENGTH, peerKey, schedulerAdvert } from '../schemas.ts'
import { arr, bool, bytes, num, obj, oneOf, optional, str, uint } from '../validate.ts'

export const ADVERT_MAX_BYTES = 16 * 1024
export const MAX_MESH_NAME_LENGTH = 128
/** Entries an advert's `flows` may hold: the sender's busiest steal/push partners. */
export const MAX_ADVERT_FLOWS = 16
/** How far back an advert's `flows` may reach (the window a node reports over is shorter). */
export const MAX_ADVERT_FLOW_AGE_MS = 60_000

export function capacityTopic(mesh: string): string {
  return `gridnode/${mesh}/capacity/1`
}

/**
 * Tasks that moved between the sender and one other node lately (steals
 * and pushes it took part in): lets every member draw who takes work from
 * whom across the mesh, not only around itself. A hint, like the rest.
 */
export interface AdvertFlow {
  /** The other node (a peer ID, checked at decode). */
  peer: string
  /** steal: the receiving side stole them; push: the sending side (an owner) pushed them. */
  kind: 'steal' | 'push'
  /** true: the tasks went from the sender to `peer`; false: from `peer` to the sender. */
  out: boolean
  /** Tasks moved in the window. */
  tasks: number
  /** ms before `sentAtMs` of the last move. */
  agoMs: number
}

export interface CapacityAdvert {
  v: 1
  mesh: string
  peerId: string
  /** Monotonic per sender: a receiver drops adverts with seq ≤ the last it accepted. */
  seq: number
  sentAtMs: number
  /** Software version. */
  version: string
  /** CPU cores. */
  cpus: number
  load1: number
  memoryTotalMB: number
  memoryFreeMB: number
  gpus: Array<GpuInfo & { free: boolean }>
  sched: SchedulerAdvert
  /**
   * The sender's membership certificate (signed bytes): lets a member that
   * hears this advert through a relay, before it has met the sender, check
   * that the signer is a member (gossip's signature proves the key).
   */
  cert?: Uint8Array
  /** Recent steals and pushes the sender took part in (at most MAX_ADVERT_FLOWS); absent from older senders. */
  flows?: AdvertFlow[]
}

type AdvertMessage = { t: 'advert' } & Omit<CapacityAdvert, 'v'>

const codec = messageCodec<AdvertMessage>('capacity', ADVERT_MAX_BYTES, {
  advert: fields({
    mesh: str({ min: 1, max: MAX_MESH_NAME_LENGTH }),
    peerId: str({ min: 1, max: MAX_PEER_ID_LENGTH }),
    seq: uint(),
    sentAtMs: uint(),
    version: str({ max: 64 }),
    cpus: uint(1 << 20),
    load1: num(0, 1e6),
    memoryTotalMB: uint(),
    memoryFreeMB: uint(),
    gpus: arr(
      fields({
        index: uint(1024),
        uuid: optional(str({ max: 128 })),
        name: str({ max: 256 }),
        memoryTotalMB: optional(uint()),
        memoryFreeMB: optional(uint()),
        utilizationPct: optional(num(0, 100)),
        free: bool(),
      }),
      MAX_GPUS,
    ),
    sched: schedulerAdvert,
    cert: optional(bytes(2048)),
    flows: optional(
      arr(
        obj({
          peer: peerKey,
          kind: oneOf('steal', 'push'),
          out: bool(),
          tasks: uint(1 << 30),
          agoMs: uint(MAX_ADVERT_FLOW_AGE_MS),
        }),
        MAX_ADVERT_FLOWS,
      ),
    ),
  }),
})

export function encodeAdvert(advert: CapacityAdvert): Uint8Array {
  const { v: _v, ...rest } = advert
  return codec.encode({ t: 'advert', ...rest })
}

/** Throws RemoteProtocolError naming the field on any problem. */
export function decodeAdvert(bytes: Uint8Array): CapacityAdvert {
  const { t: _t, ...rest } = codec.decode(bytes)
  return { v: 1, ...rest }
}

export type AdvertRejection =
  | 'malformed'
  | 'oversized'
  | 'foreign-mesh'
  | 'wrong-signer'
  | 'stale'
  | 'replayed'

export type AdvertCheck =
  | { ok: true; advert: CapacityAdvert }
  | { ok: false; reason: AdvertRejection; detail?: string }

export interface AdvertContext {
  /** Our mesh name. */
  mesh: string
  /** The gossip message's `from` peer id string (its signature was verified by gossipsub). */
  from: string
  /** Local wall-clock time, ms. */
  now: number
  /** The highest seq accepted so far from `from`, if any. */
  lastSeq?: number
  /** Adverts sent longer ago, or further in the future, than this are stale. */
  maxAgeMs: number
}

/** Decodes and judges a gossiped advert. Never throws. */
export function validateAdvert(bytes: Uint8Array, ctx: AdvertContext): AdvertCheck {
  if (bytes.byteLength > ADVERT_MAX_BYTES) return { ok: false, reason: 'oversized' }
  let advert: CapacityAdvert
  try {
    advert = decodeAdvert(bytes)
  } catch (err) {
    const detail = err instanceof RemoteProtocolError ? err.message : String(err)
    return { ok: false, reason: 'malformed', detail }
  }
  if (advert.mesh !== ctx.mesh) return { ok: false, reason: 'foreign-mesh' }
  if (advert.peerId !== ctx.from) return { ok: false, reason: 'wrong-signer' }
  if (Math.abs(ctx.now - advert.sentAtMs) > ctx.maxAgeMs) return { ok: false, reason: 'stale' }
  if (ctx.lastSeq !== undefined && advert.seq <= ctx.lastSeq) return { ok: false, reason: 'replayed' }
  return { ok: true, advert }
}
