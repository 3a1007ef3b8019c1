/** A module that cannot load (its top level throws, an import fails) is named by its file, not only its hash. */
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BlobStore } from '../../src/executor/blob-store.ts'
import { bundleModule } from '../../src/executor/bundle.ts'
import { encodeValue } from '../../src/executor/values.ts'
import { WorkerPool } from '../../src/executor/worker-pool.ts'

let dir: string
let blobs: BlobStore

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'gridnode-load-error-'))
  blobs = await BlobStore.open(join(dir, 'store'))
})
afterAll(async () => {
  await rm(dir, { recursive: true, force: true })
})

async function loadError(
  name: string,
  source: string,
  sourcemap = true,
): Promise<{ error: string; hash: string }> {
  const path = join(dir, name)
  await writeFile(path, source)
  const hash = await blobs.put((await bundleModule(path, { sourcemap })).bytes)
  const pool = new WorkerPool({ size: 1 })
  try {
    const outcome = await pool.run({
      bundle: hash,
      url: blobs.urlOf(hash),
      exportName: 'square',
      input: encodeValue(1),
      depValues: [],
      timeoutMs: 0,
      memoryMB: 0,
    })
    expect(outcome.status).toBe('rejected')
    return { error: (outcome as { error: string }).error, hash }
  } finally {
    await pool.close()
  }
}

describe('a module that cannot load', () => {
  test('whose top level throws is named by its file', async () => {
    const { error } = await loadError(
      'top-level.mjs',
      "throw new Error('top-level fail')\nexport function square(x) { return x * x }\n",
    )
    expect(error).toBe(`cannot load module ${join(dir, 'top-level.mjs')}: top-level fail`)
  })

  test('whose import fails is named by its file, not by the file it imports', async () => {
    await writeFile(join(dir, 'dep.mjs'), 'export const k = 2\n')
    const { error } = await loadError(
      'bad-import.mjs',
      "import { k } from './dep.mjs'\nimport { nope } from 'node:fs'\nexport function square(x) { return nope(x) * k }\n",
    )
    expect(error).toMatch(
      new RegExp(`^cannot load module ${join(dir, 'bad-import.mjs')}: SyntaxError: .*nope`),
    )
  })

  test('bundled without a source map, it is named by its bundle hash as before', async () => {
    const { error, hash } = await loadError(
      'no-map.mjs',
      "throw new Error('fail')\nexport const square = 1\n",
      false,
    )
    expect(error).toBe(`cannot load module ${hash.slice(0, 12)}: fail`)
  })
})
