/**
 * Custody credentials as plain data: how a batch is stamped when it leaves
 * a node, and the path of holders they name. No crypto here: the signing and
 * checking functions are passed in (the daemon's are in
 * src/node/custody-credentials.ts; the simulator's sign nothing and trust
 * its own paths).
 */

import { MAX_COPY, MAX_CUSTODY_LINKS } from '../domain/types.ts'
import type {
  Batch,
  CopyKey,
  CustodyCredentials,
  CustodyPath,
  HeldKey,
  PeerKey,
  TaskDescriptor,
  TaskKey,
  TaskResult,
} from './types.ts'

export { MAX_COPY, MAX_CUSTODY_LINKS }

export interface HandOffSigner {
  /** Owner: its MAC over handing `key` to `first`. */
  tag(key: TaskKey, first: PeerKey): Uint8Array
  /** Owner: tag() of each key, in order, when making them together is cheaper. */
  tags?(keys: readonly TaskKey[], first: PeerKey): Uint8Array[]
  /** A holder: its signature over handing `key` of `owner`'s job on, as path position `hop` (2…), to `to`. */
  link(owner: PeerKey, key: TaskKey, hop: number, to: PeerKey): Uint8Array
}

export interface PathVerifier {
  tag(key: TaskKey, first: PeerKey, tag: Uint8Array): boolean
  link(owner: PeerKey, key: TaskKey, hop: number, from: PeerKey, to: PeerKey, sig: Uint8Array): boolean
}

/**
 * Which copy of its attempt a holder holds (see CopyKey): its position in the
 * custody chain the credentials record (1 = handed by the owner). A copy
 * without credentials counts as 1.
 */
export function copyOf(c: CustodyCredentials | undefined): number {
  return c === undefined ? 1 : c.links.length + 1
}

/** The holders the credentials name, unchecked. */
export function pathOf(c: CustodyCredentials): CustodyPath {
  const path = [c.first]
  for (const l of c.links) path.push(l.to)
  return path
}

/** True if a holder may hand this copy on (the chain has room for one more link). */
export function canHandOn(d: TaskDescriptor): boolean {
  return d.custody === undefined || d.custody.links.length < MAX_CUSTODY_LINKS
}

/**
 * The batch as it leaves `self` for `to`: tasks of jobs `self` owns get a
 * fresh grant (first = to, no links); others get one more link. Copies the
 * descriptors it changes (held ones are never mutated). A task of another
 * owner without credentials, or with no room for a link, goes as it is
 * (its new holder cannot prove custody; the scheduler does not hand such on).
 */
export function handOff(batch: Batch, self: PeerKey, to: PeerKey, signer: HandOffSigner): Batch {
  const owners = new Map<string, PeerKey>()
  for (const j of batch.jobs) owners.set(j.id, j.owner)
  // The owner's own tasks get fresh grants, tagged together where the signer can.
  const own = batch.tasks.filter((d) => owners.get(d.job) === self)
  const ownKeys = own.map((d) => ({ job: d.job, index: d.index, attempt: d.attempt }))
  const tags = signer.tags?.(ownKeys, to) ?? ownKeys.map((k) => signer.tag(k, to))
  let next = 0
  const tasks = batch.tasks.map((d): TaskDescriptor => {
    const owner = owners.get(d.job)
    const key = { job: d.job, index: d.index, attempt: d.attempt }
    if (owner === self) return { ...d, custody: { first: to, tag: tags[next++], links: [] } }
    const c = d.custody
    if (owner === undefined || c === undefined || c.links.length >= MAX_CUSTODY_LINKS) return d
    const hop = c.links.length + 2
    const link = { to, sig: signer.link(owner, key, hop, to) }
    return { ...d, custody: { first: c.first, tag: c.tag, links: [...c.links, link] } }
  })
  return { jobs: batch.jobs, tasks }
}

/**
 * The verified path of credentials for `key` of a job owned by `owner`, or
 * undefined if any part fails. `tag` is checked only when `verifier.tag` can
 * (the owner); links by the previous holder's key.
 */
export function verifiedPath(
  owner: PeerKey,
  key: TaskKey,
  c: CustodyCredentials | undefined,
  verifier: PathVerifier,
): CustodyPath | undefined {
  if (c === undefined || c.links.length > MAX_CUSTODY_LINKS) return undefined
  if (!verifier.tag(key, c.first, c.tag)) return undefined
  let prev = c.first
  for (let i = 0; i < c.links.length; i++) {
    const l = c.links[i]
    if (!verifier.link(owner, key, i + 2, prev, l.to, l.sig)) return undefined
    prev = l.to
  }
  return pathOf(c)
}

/** The simulator's stand-in: every hand-off is stamped, nothing is signed. */
export const TRUSTED_SIGNER: HandOffSigner = {
  tag: () => new Uint8Array(0),
  link: () => new Uint8Array(0),
}

/** The simulator's stand-in for the daemon's checks: lease holdings with their unchecked paths. */
export function trustedHoldings(holdings: HeldKey[]): Array<CopyKey & { path?: CustodyPath }> {
  return holdings.map(({ custody, ...k }) => (custody === undefined ? k : { ...k, path: pathOf(custody) }))
}

/** The simulator's stand-in for the daemon's checks: results with their unchecked paths. */
export function trustedResults(results: TaskResult[]): Array<TaskResult & { path?: CustodyPath }> {
  return results.map((r) => (r.custody === undefined ? r : { ...r, path: pathOf(r.custody) }))
}
