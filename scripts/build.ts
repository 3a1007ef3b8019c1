/**
 * `npm run build` (and `npm pack`, through prepack): builds what the published
 * package runs, into dist/:
 *
 *   dist/gridnode.js   the CLI and daemon (bin/gridnode.js runs it when it exists)
 *   dist/index.js      the library, `import { connect } from 'gridnode'`
 *   dist/worker.js     the executor's worker-thread entry (the daemon finds it beside itself)
 *   dist/*-worker.js   any other worker or sandbox entry under src/executor (found by name)
 *   dist/chunk-*.js    code shared by those, split so that client commands never parse libp2p:
 *                      the daemon is a dynamic import of `gridnode start` and stays its own chunk
 *   dist/types/        declarations of the library (tsc), `types` in package.json's exports
 *   dist/dashboard/    the dashboard page (dashboard/build.ts): index.html, app.js, app.css
 *
 * All dependencies are bundled except esbuild, which the library and the daemon call at run
 * time to bundle users' task modules: it stays a real package with its platform binary.
 *
 * Flags: --outdir <dir> (default dist), --sourcemap (linked .map files; not in the package),
 * --no-types (skip the declarations).
 */
import { execFileSync } from 'node:child_process'
import { existsSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { dirname, join, relative, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { writeDashboard } from '../dashboard/build.ts'

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..')

function flagValue(name: string): string | undefined {
  const i = process.argv.indexOf(name)
  return i >= 0 ? process.argv[i + 1] : undefined
}

/** The entry points, by output name. Worker-like entries under src/executor are picked up by file name. */
export function entryPoints(root = ROOT): Record<string, string> {
  const entries: Record<string, string> = { gridnode: 'cli/main.ts', index: 'src/client/index.ts' }
  const walk = (dir: string): void => {
    if (!existsSync(join(root, dir))) return
    for (const name of readdirSync(join(root, dir))) {
      const rel = `${dir}/${name}`
      if (statSync(join(root, rel)).isDirectory()) walk(rel)
      else if (/^(.+-)?worker(-.+)?\.ts$/.test(name) && !name.endsWith('.d.ts')) {
        const out = name.replace(/\.ts$/, '')
        if (entries[out] && entries[out] !== rel) throw new Error(`two worker entries named ${out}: ${rel}`)
        entries[out] = rel
      }
    }
  }
  walk('src/executor')
  // worker-pool.ts, worker-slot.ts and worker-protocol.ts are modules, not entries.
  for (const name of Object.keys(entries)) {
    if (/^worker-(pool|slot|protocol)$/.test(name)) delete entries[name]
  }
  return entries
}

/** tsc keeps `.ts` in declaration imports; a consumer's TypeScript resolves `.js` to the `.d.ts`. */
export function rewriteDeclarationImports(text: string): string {
  return text.replace(/((?:from|import)\s*\(?\s*['"])(\.{1,2}\/[^'"]+)\.ts(['"])/g, '$1$2.js$3')
}

function rewriteTree(dir: string): number {
  let n = 0
  for (const name of readdirSync(dir)) {
    const path = join(dir, name)
    if (statSync(path).isDirectory()) n += rewriteTree(path)
    else if (name.endsWith('.d.ts')) {
      writeFileSync(path, rewriteDeclarationImports(readFileSync(path, 'utf8')))
      n++
    }
  }
  return n
}

/**
 * esbuild escapes non-ASCII characters everywhere but in the comments it keeps; one `→` in a
 * comment makes V8 hold the whole 3 MB file as a two-byte string (~8 MB more resident memory in
 * the daemon). \uXXXX is the same character in strings, regexes and identifiers, and harmless
 * text in a comment, so every UTF-16 unit above 0x7f is written that way.
 */
export function toAscii(text: string): string {
  return text.replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`)
}

function asciiOnly(dir: string): void {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith('.js')) continue
    const path = join(dir, name)
    const text = readFileSync(path, 'utf8')
    const ascii = toAscii(text)
    if (ascii !== text) writeFileSync(path, ascii)
  }
}

export async function buildPackage(
  o: { outdir?: string; sourcemap?: boolean; types?: boolean; quiet?: boolean } = {},
): Promise<void> {
  const outdir = resolve(ROOT, o.outdir ?? 'dist')
  rmSync(outdir, { recursive: true, force: true })
  const started = performance.now()
  const entries = entryPoints()
  await build({
    absWorkingDir: ROOT,
    entryPoints: entries,
    outdir,
    entryNames: '[name]',
    // Chunks sit beside the entries: the daemon resolves ./worker.js against its own URL.
    chunkNames: 'chunk-[hash]',
    splitting: true,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node22',
    sourcemap: o.sourcemap ? 'linked' : false,
    logLevel: 'warning',
    // esbuild bundles task modules at run time; it must stay a real package with its binary.
    external: ['esbuild'],
    // Some dependencies still call require(); give each ESM file one.
    banner: {
      js: "import { createRequire as __gnRequire } from 'node:module'; const require = __gnRequire(import.meta.url);",
    },
  })
  const bundled = Math.round(performance.now() - started)
  asciiOnly(outdir)
  // The dashboard page (dashboard/), served by the daemon from dist/dashboard/.
  await writeDashboard(join(outdir, 'dashboard'))
  let declarations = 0
  if (o.types !== false) {
    const typesDir = join(outdir, 'types')
    // The repo's TypeScript, run by the Node running this script (npm's own Node may be older).
    const tsc = join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc')
    execFileSync(
      process.execPath,
      [tsc, '-p', join(ROOT, 'scripts', 'tsconfig.types.json'), '--outDir', typesDir],
      { cwd: ROOT, stdio: 'inherit' },
    )
    declarations = rewriteTree(typesDir)
  }
  if (o.quiet) return
  process.stdout.write(
    `built ${relative(process.cwd(), outdir) || '.'}/ (${Object.keys(entries).join(', ')}; ${declarations} declaration files) ` +
      `in ${Math.round(performance.now() - started)} ms (bundles ${bundled} ms)\n`,
  )
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  await buildPackage({
    outdir: flagValue('--outdir'),
    sourcemap: process.argv.includes('--sourcemap'),
    types: !process.argv.includes('--no-types'),
  })
}
