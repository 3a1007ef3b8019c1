import { createHash } from 'node:crypto'
import { streamPair } from '@libp2p/utils'
import { describe, expect, it } from 'vitest'
import { LocalProtocolError, RemoteProtocolError } from '../../../src/errors.ts'
import {
  BLOB_CHUNK_BYTES,
  BLOB_PROTOCOL,
  blobReplyCodec,
  blobRequestCodec,
} from '../../../src/protocol/blob/codec.ts'
import {
  type BlobSource,
  fetchBlob,
  fetchPieceMap,
  pieceBits,
  registerBlobProtocol,
} from '../../../src/protocol/blob/handler.ts'
import { BlobTooLargeError, RemoteRequestError } from '../../../src/protocol/errors.ts'
import { framed, type OpenStream } from '../../../src/protocol/stream.ts'
import { FakeRegistrar, frame } from '../fakes.ts'
import { bytesOf, PEER_A, PEER_B } from '../fixtures.ts'

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex')

async function blobServer(
  blobs: Map<string, BlobSource>,
  override?: (hash: string) => Promise<BlobSource | undefined>,
) {
  const registrar = new FakeRegistrar()
  const errors: Array<{ peer: string; err: Error }> = []
  const asked: string[] = []
  await registerBlobProtocol(
    registrar,
    {
      async getBlob(peer, hash) {
        asked.push(`${peer}:${hash.slice(0, 8)}`)
        return override ? override(hash) : blobs.get(hash)
      },
    },
    { timeoutMs: 1000, onError: (peer, err) => errors.push({ peer, err }) },
  )
  return { registrar, errors, asked, open: registrar.opener(BLOB_PROTOCOL, PEER_B) }
}

/** A hand-written server that answers any blob-get with the given frames, then closes. */
function rawServer(messages: Array<Parameters<typeof blobReplyCodec.encode>[0]>): OpenStream {
  return async () => {
    const [outbound, inbound] = await streamPair({ delay: 0 })
    const io = framed(inbound, 2 * 1024 * 1024)
    void (async () => {
      blobRequestCodec.decode((await io.read())!)
      for (const m of messages) await io.write(blobReplyCodec.encode(m))
      await inbound.close()
    })()
    return outbound
  }
}

describe('blob protocol', () => {
  it('fetches a small blob and reports unknown ones as undefined', async () => {
    const data = bytesOf(1000)
    const s = await blobServer(new Map([[sha256(data), data]]))
    expect(await fetchBlob(s.open, sha256(data))).toEqual(data)
    expect(await fetchBlob(s.open, sha256(bytesOf(5)))).toBeUndefined()
    expect(s.asked).toEqual([
      `${PEER_B}:${sha256(data).slice(0, 8)}`,
      `${PEER_B}:${sha256(bytesOf(5)).slice(0, 8)}`,
    ])
    await Promise.all(s.registrar.served.map((x) => x.done))
    expect(s.errors).toEqual([])
    expect(
      s.registrar.served.every((x) => x.inbound.status === 'closed' && x.outbound.status === 'closed'),
    ).toBe(true)
  })

  it('fetches a blob larger than one chunk, from bytes or from a stream of uneven pieces', async () => {
    const data = bytesOf(2 * BLOB_CHUNK_BYTES + BLOB_CHUNK_BYTES / 2 + 7, 3)
    const hash = sha256(data)
    const pieces = [
      data.subarray(0, 100),
      data.subarray(100, 100 + 1.5 * BLOB_CHUNK_BYTES),
      data.subarray(100 + 1.5 * BLOB_CHUNK_BYTES),
    ]
    async function* chunks() {
      for (const p of pieces) yield p
    }
    // (Buffer.equals: vitest's deep equality is slow on megabytes)
    const fromBytes = await blobServer(new Map([[hash, data]]))
    expect(Buffer.from(data).equals((await fetchBlob(fromBytes.open, hash))!)).toBe(true)
    const fromStream = await blobServer(new Map([[hash, { size: data.byteLength, chunks: chunks() }]]))
    expect(Buffer.from(data).equals((await fetchBlob(fromStream.open, hash))!)).toBe(true)
    const empty = new Uint8Array()
    const s = await blobServer(new Map([[sha256(empty), empty]]))
    expect(await fetchBlob(s.open, sha256(empty))).toEqual(empty)
  })

  it('rejects a blob that does not match its hash', async () => {
    const data = bytesOf(3 * 1024)
    const wrongHash = sha256(bytesOf(3 * 1024, 9))
    const s = await blobServer(new Map([[wrongHash, data]]))
    const err = await fetchBlob(s.open, wrongHash).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteProtocolError)
    expect((err as Error).message).toMatch(/does not match its hash/)
  })

  it('refuses blobs over maxBytes', async () => {
    const data = bytesOf(5000)
    const s = await blobServer(new Map([[sha256(data), data]]))
    await expect(fetchBlob(s.open, sha256(data), { maxBytes: 4999 })).rejects.toBeInstanceOf(
      BlobTooLargeError,
    )
  })

  it('passes a server failure on as RemoteRequestError', async () => {
    const s = await blobServer(new Map(), async () => {
      throw new Error('EIO')
    })
    const err = await fetchBlob(s.open, 'ab'.repeat(32)).catch((e: unknown) => e)
    expect(err).toBeInstanceOf(RemoteRequestError)
    expect((err as Error).message).toMatch(/EIO/)
    expect(s.errors.map((e) => e.err.message)).toEqual(['EIO'])
  })

  it('a source shorter than its size breaks the stream; the client sees an error', async () => {
    async function* short() {
      yield bytesOf(10)
    }
    const s = await blobServer(new Map(), async () => ({ size: 20, chunks: short() }))
    await expect(fetchBlob(s.open, 'cd'.repeat(32))).rejects.toThrow()
    await s.registrar.served[0].done
    expect(s.errors[0].err).toBeInstanceOf(LocalProtocolError)
  })

  it('checks the hash format before opening anything', async () => {
    const s = await blobServer(new Map())
    await expect(fetchBlob(s.open, 'AB'.repeat(32))).rejects.toBeInstanceOf(LocalProtocolError)
    expect(s.registrar.opened).toBe(0)
  })

  it('rejects a server that sends more than it announced, or anything after the blob', async () => {
    const data = bytesOf(10)
    const hash = sha256(data)
    const tooMuch = rawServer([
      { t: 'blob-header', found: true, size: 10 },
      { t: 'blob-chunk', data: bytesOf(20) },
    ])
    await expect(fetchBlob(tooMuch, hash)).rejects.toThrow(/more bytes than the header's size 10/)
    const trailing = rawServer([
      { t: 'blob-header', found: true, size: 10 },
      { t: 'blob-chunk', data },
      { t: 'blob-chunk', data },
    ])
    await expect(fetchBlob(trailing, hash)).rejects.toThrow(/data after the blob/)
    const noHeader = rawServer([{ t: 'blob-chunk', data }])
    await expect(fetchBlob(noHeader, hash)).rejects.toThrow(/expected blob-header/)
    const cutShort = rawServer([{ t: 'blob-header', found: true, size: 10 }])
    await expect(fetchBlob(cutShort, hash)).rejects.toThrow(/stream ended before the blob did/)
  })

  it('aborts a peer sending a garbage request and keeps serving', async () => {
    const data = bytesOf(10)
    const s = await blobServer(new Map([[sha256(data), data]]))
    const bad = await s.registrar.connect(BLOB_PROTOCOL, PEER_A)
    bad.outbound.send(frame(new Uint8Array([0xa2, 0x61, 0x76, 0x01, 0x61, 0x74])))
    await bad.done
    expect(s.errors[0].peer).toBe(PEER_A)
    expect(s.errors[0].err).toBeInstanceOf(RemoteProtocolError)
    expect(await fetchBlob(s.open, sha256(data))).toEqual(data)
  })

  it('gives up when the caller aborts', async () => {
    const data = bytesOf(10)
    const s = await blobServer(new Map(), async () => {
      await new Promise((resolve) => setTimeout(resolve, 100))
      return data
    })
    const ctl = new AbortController()
    const pending = fetchBlob(s.open, sha256(data), { signal: ctl.signal })
    setTimeout(() => ctl.abort(new Error('no longer needed')), 10)
    await expect(pending).rejects.toThrow('no longer needed')
  })
})

describe('blob piece-map queries', () => {
  it('answers from getPieces, "not found" without it or for a map that does not fit its size', async () => {
    const registrar = new FakeRegistrar()
    const have = pieceBits(13, [1, 2])
    await registerBlobProtocol(registrar, {
      getBlob: async () => undefined,
      getPieces: async (_peer, hash) =>
        hash === HASH_A
          ? { size: 50 << 20, chunk: 4 << 20, have }
          : hash === HASH_B
            ? { size: 50 << 20, chunk: 4 << 20, have: new Uint8Array(9) }
            : undefined,
    })
    const open = registrar.opener(BLOB_PROTOCOL, PEER_B)
    expect(await fetchPieceMap(open, HASH_A)).toEqual({ size: 50 << 20, chunk: 4 << 20, have })
    expect(await fetchPieceMap(open, HASH_B)).toBeUndefined()
    expect(await fetchPieceMap(open, 'cd'.repeat(32))).toBeUndefined()
    const plain = await blobServer(new Map())
    expect(await fetchPieceMap(plain.open, HASH_A)).toBeUndefined()
  })

  it('refuses an answer that is neither a map nor "not found"', async () => {
    const lying = rawServer([{ t: 'blob-header', found: true, size: 10 }])
    await expect(fetchPieceMap(lying, HASH_A)).rejects.toThrow(/expected blob-pieces/)
  })
})

const HASH_A = 'ab'.repeat(32)
const HASH_B = 'ef'.repeat(32)
