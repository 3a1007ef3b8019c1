import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, test } from 'vitest'
import { BlobStore, sha256Hex } from '../../src/executor/blob-store.ts'

describe('BlobStore', () => {
  let dataDir: string
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gridnode-blobs-'))
  })
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true })
  })

  test('put returns the sha256, and get/has/pathOf find the bytes', async () => {
    const store = await BlobStore.open(dataDir)
    const bytes = new TextEncoder().encode('export const x = 1\n')
    const hash = await store.put(bytes)
    expect(hash).toBe(sha256Hex(bytes))
    expect(hash).toMatch(/^[0-9a-f]{64}$/)
    expect(await store.has(hash)).toBe(true)
    expect(await store.get(hash)).toEqual(bytes)
    expect(store.pathOf(hash)).toBe(join(dataDir, 'blobs', `${hash}.mjs`))
    expect(await readFile(store.pathOf(hash), 'utf8')).toBe('export const x = 1\n')
    expect(store.urlOf(hash)).toMatch(/^file:\/\/.*\.mjs$/)
    expect(await store.put(bytes)).toBe(hash)
    expect(await readdir(join(dataDir, 'blobs'))).toEqual([`${hash}.mjs`])
  })

  test('unknown blobs are absent', async () => {
    const store = await BlobStore.open(dataDir)
    expect(await store.has('a'.repeat(64))).toBe(false)
    expect(await store.get('a'.repeat(64))).toBeUndefined()
  })

  test('putVerified keeps matching bytes and refuses others with GN_BLOB_HASH_MISMATCH', async () => {
    const store = await BlobStore.open(dataDir)
    const bytes = new Uint8Array([1, 2, 3])
    const hash = sha256Hex(bytes)
    await expect(store.putVerified(hash, new Uint8Array([1, 2, 4]))).rejects.toMatchObject({
      code: 'GN_BLOB_HASH_MISMATCH',
    })
    expect(await store.has(hash)).toBe(false)
    await store.putVerified(hash, bytes)
    expect(await store.get(hash)).toEqual(bytes)
  })

  test('malformed hashes (paths included) are refused with GN_BAD_HASH', async () => {
    const store = await BlobStore.open(dataDir)
    for (const bad of ['../../etc/passwd', 'A'.repeat(64), 'a'.repeat(63), '']) {
      expect(() => store.pathOf(bad)).toThrow(expect.objectContaining({ code: 'GN_BAD_HASH' }))
      await expect(store.get(bad)).rejects.toMatchObject({ code: 'GN_BAD_HASH' })
    }
    await expect(store.putVerified('../x', new Uint8Array())).rejects.toMatchObject({ code: 'GN_BAD_HASH' })
  })

  test('temporary files left by a crash are cleared on open; concurrent puts of one blob agree', async () => {
    const store = await BlobStore.open(dataDir)
    await writeFile(join(dataDir, 'blobs', '.tmp-dead-beef'), 'half a blob')
    await BlobStore.open(dataDir)
    expect(await readdir(join(dataDir, 'blobs'))).toEqual([])
    const bytes = new Uint8Array(100_000).fill(7)
    const hashes = await Promise.all([store.put(bytes), store.put(bytes), store.put(bytes)])
    expect(new Set(hashes).size).toBe(1)
    expect(await readdir(join(dataDir, 'blobs'))).toEqual([`${hashes[0]}.mjs`])
    expect(await store.get(hashes[0])).toEqual(bytes)
  })
})
