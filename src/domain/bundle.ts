/**
 * Turns a task module (TypeScript or JavaScript, with npm imports) into one
 * self-contained ESM file: the unit that travels between nodes as a blob and
 * that workers import. Node builtins stay external.
 */

import { createHash } from 'node:crypto'
import { stat } from 'node:fs/promises'
import { dirname, resolve } from 'node:path'
import { fileURLToPath, pathToFileURL } from 'node:url'
import { type BuildFailure, build, type Message } from 'esbuild'
import { BundleBuildError, ModuleNotFoundError } from './errors.ts'

export interface Bundle {
  /** sha256 hex of `bytes`: the blob hash to put in a job's WorkSpec. */
  hash: string
  bytes: Uint8Array
  /** The names the module exports (`default` included when it has one). */
  exports: string[]
}

/**
 * CommonJS packages bundled into ESM call `require` for builtins; esbuild's
 * shim looks for a global `require`, so give the bundle one.
 */
const BANNER =
  "import { createRequire as __gridnodeCreateRequire } from 'node:module';\n" +
  'const require = __gridnodeCreateRequire(import.meta.url);'

export interface BundleOptions {
  /**
   * Inline a source map (default true), so the stacks of tasks that throw
   * point at the submitter's source files. It about doubles the bundle.
   */
  sourcemap?: boolean
}

export async function bundleModule(entry: string | URL, opts: BundleOptions = {}): Promise<Bundle> {
  const path = entryPath(entry)
  try {
    const s = await stat(path)
    if (!s.isFile()) throw new ModuleNotFoundError(`module entry is not a file: ${path}`)
  } catch (err) {
    if (err instanceof ModuleNotFoundError) throw err
    throw new ModuleNotFoundError(`module not found: ${path}`)
  }
  const workingDir = dirname(path)
  let output: Uint8Array
  let exports: string[] = []
  try {
    const result = await build({
      entryPoints: [path],
      absWorkingDir: workingDir,
      bundle: true,
      format: 'esm',
      platform: 'node',
      target: 'node22',
      write: false,
      outfile: 'bundle.mjs',
      banner: { js: BANNER },
      sourcemap: opts.sourcemap === false ? false : 'inline',
      sourcesContent: false,
      sourceRoot: `${pathToFileURL(workingDir).href}/`,
      logLevel: 'silent',
      metafile: true,
    })
    output = result.outputFiles[0].contents
    exports = Object.values(result.metafile.outputs).flatMap((o) => o.exports)
  } catch (err) {
    throw new BundleBuildError(buildErrorMessage(path, workingDir, err), { cause: err })
  }
  return { hash: createHash('sha256').update(output).digest('hex'), bytes: output, exports }
}

function entryPath(entry: string | URL): string {
  if (entry instanceof URL) return fileURLToPath(entry)
  if (entry.startsWith('file:')) return fileURLToPath(entry)
  return resolve(entry)
}

function buildErrorMessage(path: string, workingDir: string, err: unknown): string {
  const errors = (err as Partial<BuildFailure>).errors
  if (!Array.isArray(errors) || errors.length === 0) {
    return `cannot bundle ${path}: ${(err as Error).message ?? String(err)}`
  }
  const more =
    errors.length > 1 ? ` (and ${errors.length - 1} more error${errors.length > 2 ? 's' : ''})` : ''
  return `cannot bundle ${path}: ${formatMessage(errors[0], workingDir)}${more}`
}

function formatMessage(m: Message, workingDir: string): string {
  const loc = m.location
  if (loc === null) return m.text
  const file = resolve(workingDir, loc.file)
  return `${file}:${loc.line}:${loc.column + 1}: ${m.text}\n    ${loc.lineText}`
}
