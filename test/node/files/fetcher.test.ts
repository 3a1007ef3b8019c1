/**
 * FileFetcher between in-memory nodes (blob stores on disk, the blob protocol over stream
 * pairs): nodes fetching one file at once serve each other verified pieces and ask the owner
 * only for their share; a peer that serves a corrupt piece is skipped.
 */
import { createHash, randomBytes } from 'node:crypto'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { BlobStore } from '../../../src/executor/blob-store.ts'
import { ChunkHasher, encodeChunkList, FILE_CHUNK_BYTES } from '../../../src/node/files/chunks.ts'
import { FileFetcher, type FileRef } from '../../../src/node/files/fetcher.ts'
import { BLOB_PROTOCOL } from '../../../src/protocol/blob/codec.ts'
import { fetchBlob, pieceBits, registerBlobProtocol } from '../../../src/protocol/blob/handler.ts'
import { FakeRegistrar } from '../../protocol/fakes.ts'

interface TestNode {
  id: string
  blobs: BlobStore
  fetcher: FileFetcher
  registrar: FakeRegistrar
  /** File bytes served, per asking peer. */
  served: Map<string, number>
}

const dirs: string[] = []
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

async function mesh(
  ids: string[],
  faults: { slowMs?: Record<string, number>; corrupt?: Record<string, boolean> } = {},
): Promise<Map<string, TestNode>> {
  const nodes = new Map<string, TestNode>()
  for (const id of ids) {
    const dir = mkdtempSync(join(tmpdir(), 'gridnode-fetcher-'))
    dirs.push(dir)
    const blobs = await BlobStore.open(dir)
    const registrar = new FakeRegistrar()
    const node: TestNode = {
      id,
      blobs,
      registrar,
      served: new Map(),
      fetcher: new FileFetcher({
        self: id,
        blobs,
        peers: () => ids.filter((p) => p !== id),
        opener: (peer) => nodes.get(peer)!.registrar.opener(BLOB_PROTOCOL, id),
        fetchSmall: (peer, hash) => fetchBlob(nodes.get(peer)!.registrar.opener(BLOB_PROTOCOL, id), hash),
      }),
    }
    await registerBlobProtocol(
      registrar,
      {
        getBlob: (_peer, hash) => blobs.get(hash),
        getRange: async (peer, hash, offset, length) => {
          const r =
            (await blobs.readRange(hash, offset, length)) ??
            (await node.fetcher.partialRange(hash, offset, length))
          if (r === undefined || r.data.byteLength === 0) return r
          await new Promise((done) => setTimeout(done, faults.slowMs?.[id] ?? 0))
          node.served.set(peer, (node.served.get(peer) ?? 0) + r.data.byteLength)
          if (faults.corrupt?.[id]) {
            const data = r.data.slice()
            data[0] ^= 0xff
            return { size: r.size, data }
          }
          return r
        },
        getPieces: async (_peer, hash) => {
          const size = blobs.sizeOf(hash)
          if (size !== undefined)
            return {
              size,
              chunk: FILE_CHUNK_BYTES,
              have: pieceBits(Math.ceil(size / FILE_CHUNK_BYTES), 'all'),
            }
          return node.fetcher.pieceMap(hash)
        },
      },
      { maxConcurrentPerPeer: 64, rateLimits: { 'blob-get': { perSecond: 10_000, burst: 10_000 } } },
    )
    nodes.set(id, node)
  }
  return nodes
}

/** A file of `pieces` pieces stored whole (with its chunk list) on `owner`. */
async function fileOn(owner: TestNode, pieces: number): Promise<FileRef & { bytes: Uint8Array }> {
  const bytes = randomBytes(pieces * FILE_CHUNK_BYTES - 1000)
  const hasher = new ChunkHasher(FILE_CHUNK_BYTES)
  hasher.update(bytes)
  const list = hasher.digest()
  const sha256 = await owner.blobs.put(bytes)
  const chunks = await owner.blobs.put(encodeChunkList(list))
  return { sha256, size: bytes.byteLength, chunks, bytes }
}

const sum = (m: Map<string, number>) => [...m.values()].reduce((a, b) => a + b, 0)
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

describe('FileFetcher', () => {
  it('nodes fetching a file at once take their share from the owner and the rest from each other', async () => {
    const nodes = await mesh(['owner', 'b', 'c', 'd'], { slowMs: { owner: 60 } })
    const owner = nodes.get('owner')!
    const file = await fileOn(owner, 9)
    const fetchers = ['b', 'c', 'd'].map((id) => nodes.get(id)!)
    await Promise.all(fetchers.map((n) => n.fetcher.ensure(file, { prefer: ['owner'], spare: 'owner' })))
    for (const n of fetchers) expect(sha((await n.blobs.get(file.sha256))!)).toBe(file.sha256)
    const fromOwner = sum(owner.served)
    const fromPeers = fetchers.reduce((t, n) => t + sum(n.served), 0)
    // Without sharing the owner would send 3 copies. The first round may overlap (the fetchers
    // have not seen each other yet), and on a loaded machine the piece maps, asked every 0.5 s,
    // lag behind: 1.1-1.5 copies alone, 1.67 once in CI among the parallel unit tests.
    expect(fromOwner).toBeLessThan(2 * file.size)
    expect(fromOwner + fromPeers).toBeGreaterThanOrEqual(3 * file.size)
    expect(fromPeers).toBeGreaterThan(file.size)
  }, 60_000)

  it('skips a peer that serves a corrupt piece and gets every piece verified from the others', async () => {
    const nodes = await mesh(['owner', 'liar', 'e'], { corrupt: { liar: true } })
    const owner = nodes.get('owner')!
    const file = await fileOn(owner, 4)
    const liar = nodes.get('liar')!
    // The liar holds the file whole (so it is asked before the owner) but flips a byte in all it sends.
    await liar.blobs.putVerified(file.sha256, file.bytes)
    await liar.blobs.putVerified(file.chunks!, (await owner.blobs.get(file.chunks!))!)
    const e = nodes.get('e')!
    await e.fetcher.ensure(file, { prefer: ['owner'], spare: 'owner' })
    expect(sha((await e.blobs.get(file.sha256))!)).toBe(file.sha256)
    expect(e.fetcher.corruptPieces).toBeGreaterThanOrEqual(1)
    // At most the ranges of the pieces in flight when the first bad one was found.
    expect(sum(liar.served)).toBeLessThanOrEqual(2 * FILE_CHUNK_BYTES)
    expect(sum(owner.served)).toBeGreaterThanOrEqual(file.size - 2 * FILE_CHUNK_BYTES)
  }, 60_000)

  it('serves only verified pieces of a file it is still fetching, and none to a `have` query', async () => {
    const nodes = await mesh(['owner', 'b'], { slowMs: { owner: 150 } })
    const owner = nodes.get('owner')!
    const b = nodes.get('b')!
    const file = await fileOn(owner, 6)
    const fetching = b.fetcher.ensure(file, { prefer: ['owner'], spare: 'owner' })
    let map = b.fetcher.pieceMap(file.sha256)
    for (let i = 0; i < 100 && (map === undefined || !map.have.some((x) => x !== 0)); i++) {
      await new Promise((r) => setTimeout(r, 50))
      map = b.fetcher.pieceMap(file.sha256)
    }
    expect(map).toBeDefined()
    const held = [...Array(6).keys()].filter((i) => (map!.have[i >> 3] & (0x80 >> (i & 7))) !== 0)
    expect(held.length).toBeGreaterThan(0)
    expect(held.length).toBeLessThan(6)
    const i = held[0]
    const r = await b.fetcher.partialRange(file.sha256, i * FILE_CHUNK_BYTES + 10, 1000)
    const at = i * FILE_CHUNK_BYTES + 10
    expect(Buffer.from(r!.data).equals(file.bytes.subarray(at, at + 1000))).toBe(true)
    expect(await b.fetcher.partialRange(file.sha256, 0, 0)).toBeUndefined()
    const missing = [...Array(6).keys()].find((k) => !held.includes(k))!
    expect(await b.fetcher.partialRange(file.sha256, missing * FILE_CHUNK_BYTES, 10)).toBeUndefined()
    await fetching
    expect(b.fetcher.pieceMap(file.sha256)).toBeUndefined()
  }, 60_000)
})
