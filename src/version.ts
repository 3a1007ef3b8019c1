/**
 * gridnode's version, read at run time from its package.json, the one place it is written.
 * Works from the sources (src/version.ts), from the bundles (dist/*.js) and from an installed
 * package: the nearest package.json above this file that is gridnode's.
 */
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export function readVersion(from: string = fileURLToPath(import.meta.url)): string {
  let dir = dirname(from)
  for (let depth = 0; depth < 8; depth++) {
    try {
      const pkg = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as {
        name?: string
        version?: string
      }
      if (pkg.name === 'gridnode' && typeof pkg.version === 'string') return pkg.version
    } catch {
      // no package.json here (or not JSON): look further up
    }
    const up = dirname(dir)
    if (up === dir) break
    dir = up
  }
  return '0.0.0-unknown'
}

/** This gridnode's version, e.g. "0.1.0". */
export const VERSION: string = readVersion()
