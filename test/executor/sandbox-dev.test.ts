/**
 * What a sandboxed command can do with /dev, for real: bwrap run with bwrapArgs' command line, both
 * ways a daemon runs it. As root (privileged, the command dropped to a uid of its own), and as a
 * user (an unprivileged user namespace: here the test drops bwrap itself to `nobody` with setpriv,
 * as a daemon started by a user is). In a user namespace bwrap's /dev was a writable tmpfs of
 * half the machine's memory outside every limit of the task's: a task with memoryMB 64 wrote 3 GB
 * into /dev/shm (found by an adversarial review). Skipped where this cannot run (not root, no
 * bwrap, no user namespaces).
 */
import { spawnSync } from 'node:child_process'
import { chmodSync, mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, test } from 'vitest'
import { bwrapArgs } from '../../src/executor/sandbox/bwrap-args.ts'

const NOBODY = 65534
const TMP_BYTES = 1 << 20
const isRoot = process.getuid?.() === 0
const bwrap = spawnSync('sh', ['-c', 'command -v bwrap'], { encoding: 'utf8' }).stdout.trim()
const userNamespaces =
  isRoot &&
  bwrap !== '' &&
  spawnSync('setpriv', [
    `--reuid=${NOBODY}`,
    `--regid=${NOBODY}`,
    '--clear-groups',
    bwrap,
    '--unshare-user',
    '--ro-bind',
    '/',
    '/',
    '--',
    'true',
  ]).status === 0

const dir = mkdtempSync(join(tmpdir(), 'gridnode-sandbox-dev-'))
chmodSync(dir, 0o777)
afterAll(() => rmSync(dir, { recursive: true, force: true }))

/** Tries to write into /dev and to fill /dev/shm; prints what it managed. */
const PROBE = [
  'touch /dev/planted 2>/dev/null && echo dev-writable',
  `head -c ${3 * TMP_BYTES} /dev/zero > /dev/shm/big 2>/dev/null`,
  'echo "shm $(wc -c < /dev/shm/big)"',
  'echo hello > /dev/null && echo null-writable',
].join('; ')

function runProbe(privileged: boolean): string {
  const args = bwrapArgs({
    bwrap,
    uid: privileged ? 2_000_000_999 : undefined,
    scratchDir: dir,
    roBinds: [],
    devices: [],
    env: { PATH: '/usr/bin:/bin' },
    limits: { dataBytes: 1 << 30, cpuSeconds: 60, fileSizeBytes: 1 << 30, processes: 64 },
    tmpBytes: TMP_BYTES,
    argv: ['sh', '-c', PROBE],
  })
  const cmd = privileged
    ? [bwrap, ...args]
    : ['setpriv', `--reuid=${NOBODY}`, `--regid=${NOBODY}`, '--clear-groups', bwrap, ...args]
  const r = spawnSync(cmd[0], cmd.slice(1), { encoding: 'utf8', timeout: 20_000 })
  if (r.status !== 0) throw new Error(`bwrap failed (${r.status}): ${r.stderr}`)
  return r.stdout
}

describe('/dev in the sandbox', () => {
  test.skipIf(!userNamespaces)('as a user: /dev is read-only and /dev/shm holds no more than /tmp', () => {
    const out = runProbe(false)
    expect(out).not.toContain('dev-writable')
    expect(out).toContain('null-writable')
    expect(Number(/shm (\d+)/.exec(out)?.[1])).toBeLessThanOrEqual(TMP_BYTES)
  })

  test.skipIf(!isRoot || bwrap === '')('as root: the same', () => {
    const out = runProbe(true)
    expect(out).not.toContain('dev-writable')
    expect(out).toContain('null-writable')
    expect(Number(/shm (\d+)/.exec(out)?.[1])).toBeLessThanOrEqual(TMP_BYTES)
  })
})
