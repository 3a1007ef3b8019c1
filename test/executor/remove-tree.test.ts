/**
 * removeTree against what a task can leave in its directory (found by an adversarial review):
 * folders nested past PATH_MAX, which fs.rm cannot walk (a task's 1 GB stayed on disk after every
 * run), and, for a daemon that is not root, folders made unreadable with chmod 0, which fs.rm
 * cannot empty (and which, left in the sandbox base dir, turned the sandbox off at the next start).
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, existsSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, describe, expect, test } from 'vitest'
import { removeTree, removeTreeSync } from '../../src/executor/remove-tree.ts'

const NOBODY = 65534
const isRoot = process.getuid?.() === 0
const root = mkdtempSync(join(tmpdir(), 'gridnode-remove-tree-'))
chmodSync(root, 0o777)
afterAll(() => {
  spawnSync('rm', ['-rf', '--', root])
})

/** A tree 300 folders deep (~6,300 bytes of path, past PATH_MAX), made by relative steps as a task would. */
function deepTree(at: string): void {
  mkdirSync(at)
  const step = 'd'.repeat(20)
  const script = `const fs = require('node:fs'); for (let i = 0; i < 300; i++) { fs.mkdirSync('${step}'); process.chdir('${step}') } fs.writeFileSync('f', 'x')`
  const r = spawnSync(process.execPath, ['-e', script], { cwd: at })
  expect(r.status).toBe(0)
}

describe('removeTree', () => {
  test('removes a tree nested past PATH_MAX, which fs.rm gives up on', async () => {
    const a = join(root, 'deep-a')
    deepTree(a)
    await expect(rm(a, { recursive: true, force: true })).rejects.toThrow(/ENAMETOOLONG/)
    await removeTree(a)
    expect(existsSync(a)).toBe(false)
    const b = join(root, 'deep-b')
    deepTree(b)
    removeTreeSync(b)
    expect(existsSync(b)).toBe(false)
  })

  test('never follows a link out of the tree', async () => {
    const outside = join(root, 'outside')
    mkdirSync(outside)
    writeFileSync(join(outside, 'keep'), 'x')
    chmodSync(outside, 0o500)
    const a = join(root, 'linked')
    deepTree(a)
    symlinkSync(outside, join(a, 'to-outside'))
    await removeTree(a)
    expect(existsSync(a)).toBe(false)
    expect(existsSync(join(outside, 'keep'))).toBe(true)
    expect(spawnSync('stat', ['-c', '%a', outside], { encoding: 'utf8' }).stdout.trim()).toBe('500')
    chmodSync(outside, 0o700)
    rmSync(outside, { recursive: true })
  })

  // A daemon that is not root: the tree and removeTree both as `nobody` (this test runs as root).
  test.skipIf(!isRoot)('as a user, removes folders a task made unreadable (chmod 0)', () => {
    const as = (cmd: string[]) =>
      spawnSync('setpriv', [`--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', ...cmd], {
        encoding: 'utf8',
        cwd: root,
      })
    expect(
      as(['sh', '-c', 'mkdir -p locked/in && echo x > locked/in/f && chmod 0 locked/in locked']).status,
    ).toBe(0)
    const module = fileURLToPath(new URL('../../src/executor/remove-tree.ts', import.meta.url))
    const script = `const m = await import(${JSON.stringify(module)}); await m.removeTree(${JSON.stringify(join(root, 'locked'))}); console.log('removed')`
    const r = as([process.execPath, '--input-type=module', '-e', script])
    expect(r.stderr).toBe('')
    expect(r.stdout.trim()).toBe('removed')
    expect(existsSync(join(root, 'locked'))).toBe(false)
  })
})
