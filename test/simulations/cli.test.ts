/** `npm run sim` end to end on the tiny scenario: JSON on stdout, progress on stderr, files written. */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { describe, expect, it } from 'vitest'
import { runScenario } from '../../simulations/cli.ts'

const CLI = fileURLToPath(new URL('../../simulations/cli.ts', import.meta.url))

describe('sim cli', () => {
  it('prints the records with --json and exits 0', () => {
    const r = spawnSync(
      process.execPath,
      [CLI, 'tiny', '--seed', '5', '--json', '--strategies', 'gridnode,central'],
      {
        encoding: 'utf8',
        env: { ...process.env, GRIDNODE_SIM_OUT: mkdtempSync(join(tmpdir(), 'sim-out-')) },
      },
    )
    expect(r.status).toBe(0)
    const records = JSON.parse(r.stdout)
    expect(records.map((x: { strategy: string }) => x.strategy)).toEqual(['gridnode', 'central'])
    expect(r.stderr).toContain('seed 5')
    expect(r.stderr).toContain('makespan')
  })

  it('rejects an unknown scenario with exit code 64', () => {
    const r = spawnSync(process.execPath, [CLI, 'no-such-thing'], { encoding: 'utf8' })
    expect(r.status).toBe(64)
    expect(r.stderr).toContain('no scenario')
  })

  it('writes a record per strategy and the utilization and Gantt plots', () => {
    const dir = mkdtempSync(join(tmpdir(), 'sim-out-'))
    try {
      runScenario('tiny', 3, undefined, ['gridnode', 'random-push'], { quiet: true, outDir: dir })
      const rec = JSON.parse(readFileSync(join(dir, 'tiny-n2-s3-gridnode.json'), 'utf8'))
      expect(rec.metrics.tasksLost).toBe(0)
      expect(readFileSync(join(dir, 'tiny-n2-s3-utilization.svg'), 'utf8')).toMatch(/^<svg/)
      expect(existsSync(join(dir, 'tiny-n2-s3-random-push-gantt.svg'))).toBe(true)
    } finally {
      rmSync(dir, { recursive: true, force: true })
    }
  })
})
