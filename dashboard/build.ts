/**
 * Builds the dashboard page (Preact, bundled by esbuild) into files: index.html,
 * app.js and app.css. `npm run build` writes them to dist/dashboard/, which the
 * package ships; a daemon run from a checkout builds them in memory on first use.
 * Nothing is fetched at run time: the page loads only its own files.
 *
 *   node dashboard/build.ts [outdir]     (default dist/dashboard)
 */
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { dirname, join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const HERE = dirname(fileURLToPath(import.meta.url))

/** The page's files by name. */
export async function buildDashboard(o: { minify?: boolean } = {}): Promise<Map<string, Uint8Array>> {
  const out = await build({
    absWorkingDir: HERE,
    entryPoints: { app: join(HERE, 'src', 'main.tsx') },
    bundle: true,
    write: false,
    outdir: '/',
    format: 'esm',
    target: 'es2022',
    platform: 'browser',
    jsx: 'automatic',
    jsxImportSource: 'preact',
    minify: o.minify ?? true,
    charset: 'ascii',
    legalComments: 'none',
    logLevel: 'warning',
    // The daemon's tsconfig is for Node; the page has its own.
    tsconfig: join(HERE, 'tsconfig.json'),
  })
  const files = new Map<string, Uint8Array>()
  for (const f of out.outputFiles) files.set(f.path.replace(/^\//, ''), f.contents)
  files.set('index.html', readFileSync(join(HERE, 'index.html')))
  return files
}

export async function writeDashboard(outdir: string): Promise<number> {
  const files = await buildDashboard()
  rmSync(outdir, { recursive: true, force: true })
  mkdirSync(outdir, { recursive: true })
  let bytes = 0
  for (const [name, body] of files) {
    writeFileSync(join(outdir, name), body)
    bytes += body.byteLength
  }
  return bytes
}

if (process.argv[1] !== undefined && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  const outdir = resolve(process.argv[2] ?? join(HERE, '..', 'dist', 'dashboard'))
  const bytes = await writeDashboard(outdir)
  process.stdout.write(`dashboard: ${outdir} (${Math.round(bytes / 1024)} KiB)\n`)
}
