import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, test } from 'vitest'
import { BlobStore } from '../../src/executor/blob-store.ts'
import { bundleModule } from '../../src/executor/bundle.ts'
import { decodeValue, encodeValue } from '../../src/executor/values.ts'
import { WorkerPool } from '../../src/executor/worker-pool.ts'

const NPM_URL = new URL('./fixtures/uses-npm.ts', import.meta.url)

describe('bundleModule', () => {
  let dir: string
  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'gridnode-bundle-'))
  })
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true })
  })

  test('a TypeScript module with npm imports becomes one file that runs from the blob store', async () => {
    const { hash, bytes } = await bundleModule(NPM_URL)
    const text = new TextDecoder().decode(bytes)
    // No import of a package is left; builtins stay imports.
    expect(/^import .*["']cborg["']/m.test(text)).toBe(false)
    expect(/require\(["']sonic-boom["']\)/.test(text)).toBe(false)
    expect(/^import .* from ["'](node:)?fs["']/m.test(text)).toBe(true)
    const blobs = await BlobStore.open(dir)
    expect(await blobs.put(bytes)).toBe(hash)
    const pool = new WorkerPool({ size: 1 })
    try {
      const run = (exportName: string, input: unknown) =>
        pool.run({
          bundle: hash,
          url: blobs.urlOf(hash),
          exportName,
          input: encodeValue(input),
          depValues: [],
          timeoutMs: 0,
          memoryMB: 0,
        })
      const cbor = await run('cborRoundTrip', { a: [1, 'x'] })
      expect(cbor.status === 'ok' && decodeValue(cbor.value)).toEqual({ bytes: 7, back: { a: [1, 'x'] } })
      const written = await run('writeWithSonicBoom', join(dir, 'out.txt'))
      expect(written.status === 'ok' && decodeValue(written.value)).toBe('written by sonic-boom\n')
    } finally {
      await pool.close()
    }
  })

  test('the same module gives the same hash, whether named by URL, file: string or path', async () => {
    const a = await bundleModule(NPM_URL)
    const b = await bundleModule(NPM_URL.href)
    const c = await bundleModule(NPM_URL.pathname)
    expect(new Set([a.hash, b.hash, c.hash]).size).toBe(1)
  })

  test('the inline source map can be left out', async () => {
    const withMap = await bundleModule(NPM_URL)
    const without = await bundleModule(NPM_URL, { sourcemap: false })
    expect(new TextDecoder().decode(without.bytes)).not.toContain('sourceMappingURL')
    expect(without.bytes.byteLength).toBeLessThan(withMap.bytes.byteLength / 1.5)
    expect(without.hash).not.toBe(withMap.hash)
  })

  test('a missing entry is GN_MODULE_NOT_FOUND', async () => {
    const missing = join(dir, 'nope.ts')
    await expect(bundleModule(missing)).rejects.toMatchObject({
      code: 'GN_MODULE_NOT_FOUND',
      message: `module not found: ${missing}`,
    })
    await expect(bundleModule(dir)).rejects.toMatchObject({ code: 'GN_MODULE_NOT_FOUND' })
  })

  test("a build error is GN_BUNDLE_BUILD with esbuild's first message at file:line:column", async () => {
    const broken = join(dir, 'broken.ts')
    await writeFile(
      broken,
      'export function ok(): number {\n  return 1\n}\n\nexport function broken(: number {\n  return 2\n}\n',
    )
    const err = await bundleModule(broken).catch((e: unknown) => e)
    expect(err).toMatchObject({ code: 'GN_BUNDLE_BUILD', name: 'BundleBuildError' })
    expect((err as Error).message).toContain(`${broken}:5:24: Expected identifier but found ":"`)

    const badImport = join(dir, 'bad-import.ts')
    await writeFile(badImport, "import { x } from 'no-such-package-gridnode'\nexport const y = x\n")
    const err2 = await bundleModule(badImport).catch((e: unknown) => e)
    expect(err2).toMatchObject({ code: 'GN_BUNDLE_BUILD' })
    expect((err2 as Error).message).toContain(
      `${badImport}:1:19: Could not resolve "no-such-package-gridnode"`,
    )
  })
})
