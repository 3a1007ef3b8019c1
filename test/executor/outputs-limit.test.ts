/**
 * What one task's output files may bring into a node, whatever its job says (found by an
 * adversarial review: three sparse files of 1 GiB each, 16 KB on the task's disk, from a job with
 * no output limit of its own, were copied whole into the victim's blob store, past its quota).
 */
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BlobStore } from '../../src/executor/blob-store.ts'
import { collectOutputs, OutputLimitError, outputRoom } from '../../src/executor/files.ts'

const MiB = 1024 * 1024

describe('collectOutputs on a node', () => {
  let dataDir: string
  let blobs: BlobStore
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'gridnode-outputs-'))
    blobs = await BlobStore.open(dataDir, { quota: 8 * MiB })
  })
  afterAll(async () => {
    await rm(dataDir, { recursive: true, force: true })
  })

  test('takes at most a quarter of the blob quota from one task, sparse files counted at their size', async () => {
    expect(await outputRoom(blobs)).toBe(2 * MiB)
    const dir = await mkdtemp(join(dataDir, 'task-'))
    const sparse = await open(join(dir, 'out-sparse.bin'), 'w')
    await sparse.truncate(64 * MiB) // a hole: no disk used here
    await sparse.close()
    await expect(collectOutputs(dir, { globs: ['out-*'], maxBytes: 0 }, [], blobs)).rejects.toThrow(
      OutputLimitError,
    )
    await expect(collectOutputs(dir, { globs: ['out-*'], maxBytes: 0 }, [], blobs)).rejects.toThrow(
      /what this node takes from one task, 2097152 bytes/,
    )
    expect(blobs.size).toBe(0)
    // Within the room, outputs come in as before.
    const small = await mkdtemp(join(dataDir, 'task-'))
    await writeFile(join(small, 'out-a.txt'), 'a'.repeat(MiB))
    const outs = await collectOutputs(small, { globs: ['out-*'], maxBytes: 0 }, [], blobs)
    expect(outs.map((o) => [o.name, o.size])).toEqual([['out-a.txt', MiB]])
  })
})
