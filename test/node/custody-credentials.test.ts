import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { generateKeyPair } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import {
  CUSTODY_KEY_FILE,
  CustodyCredentialsService,
  linkMessage,
  loadOrCreateCustodyKey,
} from '../../src/node/custody-credentials.ts'
import { leaseRequestCodec } from '../../src/protocol/lease/codec.ts'
import { stealReplyCodec } from '../../src/protocol/steal/codec.ts'
import { MAX_CUSTODY_LINKS } from '../../src/scheduler/index.ts'
import type { Batch, CustodyCredentials, TaskDescriptor } from '../../src/scheduler/types.ts'

interface Member {
  id: string
  key: PrivateKey
  creds: CustodyCredentialsService
}

async function member(secret = new Uint8Array(32).fill(1)): Promise<Member> {
  const key = await generateKeyPair('Ed25519')
  const id = peerIdFromPrivateKey(key).toString()
  return { id, key, creds: new CustodyCredentialsService({ self: id, secret, privateKey: key }) }
}

const task = (index: number, attempt = 2): TaskDescriptor => ({
  job: 'job-1',
  index,
  attempt,
  input: new Uint8Array([index]),
  depValues: [],
})

function batchOf(owner: string, tasks: TaskDescriptor[]): Batch {
  return {
    jobs: [
      {
        id: 'job-1',
        owner,
        work: { kind: 'noop' },
        resources: { cpu: 1, gpu: 0, memoryMB: 1 },
        timeoutMs: 0,
        maxAttempts: 3,
        retries: 0,
      },
    ],
    tasks,
  }
}

const keyOf = (d: TaskDescriptor) => ({ job: d.job, index: d.index, attempt: d.attempt })

let owner: Member
let a: Member
let b: Member
let c: Member
let dir: string

beforeAll(async () => {
  ;[owner, a, b, c] = await Promise.all([member(new Uint8Array(32).fill(9)), member(), member(), member()])
  dir = mkdtempSync(join(tmpdir(), 'gridnode-custody-'))
})

afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** owner → a → b: the descriptor as b holds it. */
function chain(): TaskDescriptor {
  const toA = owner.creds.handOff(batchOf(owner.id, [task(0)]), a.id)
  const toB = a.creds.handOff(toA, b.id)
  return toB.tasks[0]
}

describe('custody credentials', () => {
  test('the owner tags its hand-off and verifies it; the path is [first]', () => {
    const original = task(0)
    const out = owner.creds.handOff(batchOf(owner.id, [original]), a.id)
    const d = out.tasks[0]
    expect(d.custody?.first).toBe(a.id)
    expect(d.custody?.tag.byteLength).toBe(16)
    expect(d.custody?.links).toEqual([])
    expect(original.custody).toBeUndefined()
    expect(owner.creds.path(keyOf(d), d.custody)).toEqual([a.id])
  })

  test('a holder appends a signed link the owner verifies; the held copy is not mutated', () => {
    const toA = owner.creds.handOff(batchOf(owner.id, [task(0)]), a.id)
    const held = toA.tasks[0]
    const toB = a.creds.handOff(toA, b.id)
    expect(held.custody?.links).toEqual([])
    const d = toB.tasks[0]
    expect(d.custody?.links.map((l) => l.to)).toEqual([b.id])
    expect(d.custody?.links[0].sig.byteLength).toBe(64)
    expect(owner.creds.path(keyOf(d), d.custody)).toEqual([a.id, b.id])
    const toC = b.creds.handOff(toB, c.id)
    expect(owner.creds.path(keyOf(toC.tasks[0]), toC.tasks[0].custody)).toEqual([a.id, b.id, c.id])
  })

  test('tampering is detected', () => {
    const d = chain()
    const c0 = d.custody as CustodyCredentials
    const k = keyOf(d)
    const tag = c0.tag.slice()
    tag[0] ^= 1
    const sig = c0.links[0].sig.slice()
    sig[5] ^= 1
    const cases: Array<[string, CustodyCredentials, typeof k]> = [
      ['tag', { ...c0, tag }, k],
      ['first', { ...c0, first: c.id }, k],
      ['link target', { ...c0, links: [{ ...c0.links[0], to: c.id }] }, k],
      ['signature', { ...c0, links: [{ ...c0.links[0], sig }] }, k],
      ['attempt', c0, { ...k, attempt: k.attempt + 1 }],
      ['index', c0, { ...k, index: 1 }],
      ['job', c0, { ...k, job: 'job-2' }],
    ]
    for (const [what, creds, key] of cases) expect(owner.creds.path(key, creds), what).toBeUndefined()
    expect(owner.creds.path(k, c0)).toEqual([a.id, b.id])
  })

  test('tags made together for a batch (several jobs) are each task’s own tag; a restarted owner checks them', async () => {
    const keys = [0, 1, 2, 3].flatMap((index) =>
      ['job-1', 'job-2'].map((job) => ({ job, index, attempt: 2 })),
    )
    const tags = owner.creds.tags(keys, a.id)
    keys.forEach((k, i) => {
      expect([...tags[i]]).toEqual([...owner.creds.tag(k, a.id)])
      expect(tags[i]).toBeInstanceOf(Uint8Array)
      expect(tags[i].byteLength).toBe(16)
      // Its own 16 bytes, not a view of the batch's buffer (a clone of a view copies the whole
      // buffer: as views, tags halved the no-op rate of 4 daemons).
      expect(tags[i].buffer.byteLength).toBe(16)
    })
    // All distinct (another index, attempt, job or holder is another block or key).
    const seen = new Set(tags.map((t) => Buffer.from(t).toString('hex')))
    seen.add(Buffer.from(owner.creds.tag({ ...keys[0], attempt: 3 }, a.id)).toString('hex'))
    seen.add(Buffer.from(owner.creds.tag(keys[0], b.id)).toString('hex'))
    expect(seen.size).toBe(keys.length + 2)
    // Same secret after a restart: same tags. Another secret: none checks.
    const restarted = await member(new Uint8Array(32).fill(9))
    expect(keys.every((k, i) => restarted.creds.checkTag(k, a.id, tags[i]))).toBe(true)
    const stranger = await member(new Uint8Array(32).fill(8))
    expect(keys.some((k, i) => stranger.creds.checkTag(k, a.id, tags[i]))).toBe(false)
  })

  test('each link is checked once: a longer copy costs only its new links, a changed one is checked again', () => {
    // A task index of its own, so earlier tests' remembered links do not count here.
    let batch = owner.creds.handOff(batchOf(owner.id, [task(7)]), a.id)
    batch = a.creds.handOff(batch, b.id)
    batch = b.creds.handOff(batch, c.id)
    const copy3 = batch.tasks[0]
    const before = owner.creds.linkVerifications
    expect(owner.creds.path(keyOf(copy3), copy3.custody)).toEqual([a.id, b.id, c.id])
    expect(owner.creds.linkVerifications - before).toBe(2)
    const copy4 = c.creds.handOff(batch, a.id).tasks[0]
    expect(owner.creds.path(keyOf(copy4), copy4.custody)).toEqual([a.id, b.id, c.id, a.id])
    expect(owner.creds.linkVerifications - before).toBe(3)
    expect(owner.creds.path(keyOf(copy4), copy4.custody)).toHaveLength(4)
    expect(owner.creds.linkVerifications - before).toBe(3)
    // A remembered link proves nothing for another signature, target or signer.
    const c4 = copy4.custody as CustodyCredentials
    const sig = c4.links[0].sig.slice()
    sig[9] ^= 1
    expect(
      owner.creds.path(keyOf(copy4), { ...c4, links: [{ ...c4.links[0], sig }, ...c4.links.slice(1)] }),
    ).toBeUndefined()
    expect(
      owner.creds.path(keyOf(copy4), { ...c4, links: [{ ...c4.links[0], to: c.id }, ...c4.links.slice(1)] }),
    ).toBeUndefined()
    expect(owner.creds.path(keyOf(copy4), { ...c4, first: b.id })).toBeUndefined()
    expect(owner.creds.path({ ...keyOf(copy4), attempt: 3 }, c4)).toBeUndefined()
  })

  test('a link signed by anyone but the previous holder is refused', () => {
    const toA = owner.creds.handOff(batchOf(owner.id, [task(0)]), a.id)
    // c was never handed the task but signs "a → c" with its own key.
    const forged = c.creds.handOff(toA, c.id).tasks[0]
    expect(owner.creds.path(keyOf(forged), forged.custody)).toBeUndefined()
  })

  test("only the owner's key makes a tag that verifies", async () => {
    const other = await member(new Uint8Array(32).fill(3))
    // Someone else "grants" the owner's task with its own key as if it were the owner.
    const fake = other.creds.handOff(batchOf(other.id, [task(0)]), a.id).tasks[0]
    expect(owner.creds.path(keyOf(fake), fake.custody)).toBeUndefined()
  })

  test(`a chain of ${MAX_CUSTODY_LINKS} links is not extended`, () => {
    let batch = owner.creds.handOff(batchOf(owner.id, [task(0)]), a.id)
    const holders = [a, b]
    for (let i = 0; i < MAX_CUSTODY_LINKS; i++)
      batch = holders[i % 2].creds.handOff(batch, holders[(i + 1) % 2].id)
    const full = batch.tasks[0]
    expect(full.custody?.links).toHaveLength(MAX_CUSTODY_LINKS)
    expect(owner.creds.path(keyOf(full), full.custody)).toHaveLength(MAX_CUSTODY_LINKS + 1)
    const again = a.creds.handOff(batch, b.id).tasks[0]
    expect(again.custody?.links).toHaveLength(MAX_CUSTODY_LINKS)
  })

  test('links are plain Ed25519 signatures: libp2p verifies ours, we verify libp2p’s, and other key types work', async () => {
    const d = chain()
    const link = d.custody!.links[0]
    const message = linkMessage(owner.id, keyOf(d), 2, b.id)
    // Signed with the cached KeyObject, checked by @libp2p/crypto (which imports the key per call).
    expect(a.key.publicKey.verify(message, link.sig)).toBe(true)
    expect(new Uint8Array(a.key.sign(message) as Uint8Array)).toEqual(link.sig) // Ed25519 is deterministic
    // Signed by @libp2p/crypto, checked with the cached KeyObject.
    const theirs = {
      ...d.custody!,
      links: [{ to: b.id, sig: new Uint8Array(a.key.sign(message) as Uint8Array) }],
    }
    expect(owner.creds.path(keyOf(d), theirs)).toEqual([a.id, b.id])
    // A signature of the wrong length is refused, not thrown.
    const short = { ...d.custody!, links: [{ to: b.id, sig: link.sig.subarray(0, 63) }] }
    expect(owner.creds.path(keyOf(d), short)).toBeUndefined()
    // A secp256k1 member signs and is verified through libp2p's keys.
    const key = await generateKeyPair('secp256k1')
    const k1: Member = {
      id: peerIdFromPrivateKey(key).toString(),
      key,
      creds: new CustodyCredentialsService({
        self: peerIdFromPrivateKey(key).toString(),
        secret: new Uint8Array(32),
        privateKey: key,
      }),
    }
    const toK1 = owner.creds.handOff(batchOf(owner.id, [task(3)]), k1.id)
    const toC = k1.creds.handOff(toK1, c.id).tasks[0]
    expect(owner.creds.path(keyOf(toC), toC.custody)).toEqual([k1.id, c.id])
    const bad = toC.custody!.links[0].sig.slice()
    bad[10] ^= 1
    expect(owner.creds.path(keyOf(toC), { ...toC.custody!, links: [{ to: c.id, sig: bad }] })).toBeUndefined()
  })

  test('credentials survive the wire (steal reply and lease)', () => {
    const d = chain()
    const reply = { t: 'steal-reply' as const, batch: batchOf(owner.id, [d]) }
    const back = stealReplyCodec.decode(stealReplyCodec.encode(reply))
    expect(back).toEqual(reply)
    const holdings = [{ ...keyOf(d), copy: (d.custody?.links.length ?? 0) + 1, custody: d.custody }]
    const lease = leaseRequestCodec.decode(leaseRequestCodec.encode({ t: 'lease', holdings }))
    expect(lease).toEqual({ t: 'lease', holdings })
  })

  test('the custody key is created once, 32 bytes, mode 0600, and kept', () => {
    const k1 = loadOrCreateCustodyKey(dir)
    const k2 = loadOrCreateCustodyKey(dir)
    expect(k1.byteLength).toBe(32)
    expect(k2).toEqual(k1)
    expect(statSync(join(dir, CUSTODY_KEY_FILE)).mode & 0o777).toBe(0o600)
    writeFileSync(join(dir, CUSTODY_KEY_FILE), 'short')
    expect(() => loadOrCreateCustodyKey(dir)).toThrow(/not 32/)
  })
})
