/**
 * The daemons a bench starts run the built package, as users run it (`npm install -g gridnode`
 * runs dist/, never the TypeScript sources): built once per bench process from this tree into
 * node_modules/.cache/gridnode-bench/<pid>/ (beside a copy of bin/gridnode.js, so it finds dist/
 * and, up the tree, esbuild), not into dist/; one folder per process, so a second bench never
 * rebuilds code under the first one's daemons. Removed when the process exits, and folders of
 * processes no longer alive are removed at the next build.
 *
 * - Start-up figures come out as a user's. From sources, every daemon and every sandboxed worker
 *   strips the types of each module it loads: a sandboxed worker took 0.28 s to start here
 *   instead of 0.11 s, a cost the `auto` figures paid once per job on every thief.
 * - A bench that runs while the tree is edited starts its daemons from a frozen copy: a daemon
 *   started from half-edited sources once crashed a bench run.
 *
 * GRIDNODE_BENCH_FROM_SOURCE=1 runs the sources instead (profiles with TypeScript file names).
 */
import { copyFileSync, mkdirSync, readdirSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { buildPackage } from '../scripts/build.ts'
import { BIN, REPO } from '../test/integration/harness.ts'

const BUILDS = join(REPO, 'node_modules', '.cache', 'gridnode-bench')

let built: Promise<string | undefined> | undefined

/** The `gridnode` entry the bench's daemons run: a fresh build's, or undefined for the sources. */
export function benchBin(): Promise<string | undefined> {
  built ??= build()
  return built
}

async function build(): Promise<string | undefined> {
  if (process.env.GRIDNODE_BENCH_FROM_SOURCE) return undefined
  removeStale()
  const dir = join(BUILDS, String(process.pid))
  process.once('exit', () => rmSync(dir, { recursive: true, force: true }))
  await buildPackage({ outdir: join(dir, 'dist'), types: false, quiet: true })
  const bin = join(dir, 'bin', 'gridnode.js')
  mkdirSync(join(dir, 'bin'), { recursive: true })
  copyFileSync(BIN, bin)
  return bin
}

function removeStale(): void {
  let names: string[]
  try {
    names = readdirSync(BUILDS)
  } catch {
    return
  }
  for (const name of names) {
    const pid = Number(name)
    if (Number.isInteger(pid) && pid > 0 && !alive(pid))
      rmSync(join(BUILDS, name), { recursive: true, force: true })
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}
