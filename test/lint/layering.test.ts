/**
 * The README's import table (Design: who may import what), as biome enforces
 * it: probe files with one import each are linted in a scratch copy of the
 * tree's layout under the repo's biome.json, so loosening a rule fails here.
 */
import { spawnSync } from 'node:child_process'
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, test } from 'vitest'

const ROOT = fileURLToPath(new URL('../..', import.meta.url))
const BIOME = join(ROOT, 'node_modules', '.bin', 'biome')

/** [folder, import specifier, allowed] */
const PROBES: Array<[string, string, boolean]> = [
  ['src/scheduler', '../domain/types.ts', true],
  ['src/scheduler', '../errors.ts', true],
  ['src/scheduler', './types.ts', true],
  ['src/scheduler', '../domain/values.ts', false],
  ['src/scheduler', '../protocol/index.ts', false],
  ['src/scheduler', '../node/driver.ts', false],
  ['src/scheduler', 'node:crypto', false],
  ['src/domain', '../errors.ts', true],
  ['src/domain', '../scheduler/index.ts', false],
  ['src/domain', '../node/errors.ts', false],
  ['src/protocol/steal', '../../domain/types.ts', true],
  ['src/protocol/steal', '../../scheduler/index.ts', false],
  ['src/protocol/steal', '../../node/driver.ts', false],
  ['src/executor', '../domain/values.ts', true],
  ['src/executor', '../protocol/index.ts', true],
  ['src/executor', '../scheduler/types.ts', false],
  ['src/executor', '../node/driver.ts', false],
  ['src/client', '../domain/api.ts', true],
  ['src/client', './errors.ts', true],
  ['src/client', '../node/api-files.ts', false],
  ['src/client', '../executor/bundle.ts', false],
  ['src/client', '../scheduler/types.ts', false],
  ['src/client', '@libp2p/peer-id', false],
  ['src/node', '../scheduler/index.ts', true],
  ['src/node', '../executor/index.ts', true],
]

const dir = mkdtempSync(join(tmpdir(), 'gridnode-layering-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

describe('import layering (biome noRestrictedImports per folder)', () => {
  test('each folder imports only what the README allows', () => {
    copyFileSync(join(ROOT, 'biome.json'), join(dir, 'biome.json'))
    const files = PROBES.map(([folder, spec], i) => {
      const file = join(folder, `probe-${i}.ts`)
      mkdirSync(dirname(join(dir, file)), { recursive: true })
      writeFileSync(join(dir, file), `import * as m from '${spec}'\n\nexport const probe = m\n`)
      return file
    })
    const run = spawnSync(BIOME, ['lint', '--max-diagnostics=none', ...files], { cwd: dir, encoding: 'utf8' })
    const out = run.stdout + run.stderr
    const denied = new Set(
      [...out.matchAll(/(src\/[\w/]+\/probe-\d+\.ts):\d+:\d+ lint\/style\/noRestrictedImports/g)].map(
        (m) => m[1],
      ),
    )
    const got = PROBES.map(
      ([folder, spec], i) => `${folder} -> ${spec}: ${denied.has(files[i]) ? 'denied' : 'allowed'}`,
    )
    const want = PROBES.map(([folder, spec, ok]) => `${folder} -> ${spec}: ${ok ? 'allowed' : 'denied'}`)
    expect(got).toEqual(want)
  })
})
