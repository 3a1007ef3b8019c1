/**
 * The dashboard page's files. The package ships them built, in dist/dashboard/
 * beside the daemon's bundle; a daemon run from a checkout builds them from
 * dashboard/ in memory (esbuild is a dependency either way), once.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

let loading: Promise<Map<string, Uint8Array>> | undefined

export function loadDashboardAssets(): Promise<Map<string, Uint8Array>> {
  loading ??= load().catch((err) => {
    loading = undefined
    throw err
  })
  return loading
}

async function load(): Promise<Map<string, Uint8Array>> {
  // Bundled, this module sits in dist/ (a chunk beside gridnode.js): the page is in dist/dashboard/.
  const built = fileURLToPath(new URL('./dashboard/', import.meta.url))
  if (import.meta.url.endsWith('.js') && existsSync(built)) {
    const files = new Map<string, Uint8Array>()
    for (const name of readdirSync(built)) files.set(name, readFileSync(`${built}${name}`))
    return files
  }
  // From the sources: a path esbuild leaves alone when it bundles the daemon.
  const builder = new URL('../../../dashboard/build.ts', import.meta.url)
  const { buildDashboard } = (await import(builder.href)) as {
    buildDashboard: (o?: { minify?: boolean }) => Promise<Map<string, Uint8Array>>
  }
  return buildDashboard()
}
