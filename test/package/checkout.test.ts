/**
 * In a checkout, `npx gridnode` is quiet: npm may run on an older Node than
 * `engines` names (it brings Node 24 for gridnode itself), and its EBADENGINE
 * warning must not land on every command's stderr.
 */
import { spawnSync } from 'node:child_process'
import { delimiter } from 'node:path'
import { describe, expect, it } from 'vitest'
import { VERSION } from '../../src/version.ts'
import { REPO } from './installed.ts'

describe('a checkout', () => {
  it('runs `npx gridnode --version` with nothing on stderr, whatever Node npm itself runs on', () => {
    // As a user's shell has it: no node_modules/.bin on PATH, none of `npm run`'s npm_* variables.
    const env: Record<string, string> = {}
    for (const [k, v] of Object.entries(process.env)) {
      if (v !== undefined && !/^npm_/i.test(k) && k !== 'NODE') env[k] = v
    }
    env.PATH = (process.env.PATH ?? '')
      .split(delimiter)
      .filter((p) => !p.includes('node_modules'))
      .join(delimiter)
    const r = spawnSync('npx', ['--no-install', 'gridnode', '--version'], {
      cwd: REPO,
      env,
      encoding: 'utf8',
    })
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe(VERSION)
    expect(r.status).toBe(0)
  })
})
