/**
 * `gridnode start` at a terminal says what it is once: the banner on stdout, without the log lines
 * `starting` and `ready` repeating its facts on stderr (a new-user trial saw each fact twice). A
 * supervisor reading JSON logs still gets them.
 */
import { spawn } from 'node:child_process'
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { BIN } from './harness.ts'

const root = mkdtempSync(join(tmpdir(), 'gridnode-banner-'))
afterAll(() => rmSync(root, { recursive: true, force: true }))

/** Starts a daemon, waits for its banner (or its JSON ready line), stops it; answers its stdout and stderr. */
function startOnce(format: 'pretty' | 'json'): Promise<{ stdout: string; stderr: string }> {
  const dir = mkdtempSync(join(root, `${format}-`))
  const args = [
    BIN,
    'start',
    '--data-dir',
    dir,
    '--no-mdns',
    '--listen',
    '/ip4/127.0.0.1/tcp/0',
    '--cpus',
    '1',
  ]
  args.push('--gpus', 'none', '--sandbox', 'none', '--log-format', format, '--exit-with-parent')
  const proc = spawn(process.execPath, args, { env: { ...process.env, GRIDNODE_FROM_SOURCE: '1' } })
  let stdout = ''
  let stderr = ''
  proc.stderr.on('data', (d: Buffer) => {
    stderr += d.toString()
  })
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      proc.kill('SIGKILL')
      reject(new Error(`no banner within 30 s: ${stdout} ${stderr}`))
    }, 30_000)
    proc.stdout.on('data', (d: Buffer) => {
      stdout += d.toString()
      if (stdout.includes('stop with Ctrl-C')) proc.kill('SIGTERM')
    })
    proc.on('exit', () => {
      clearTimeout(timer)
      resolve({ stdout, stderr })
    })
  })
}

describe('gridnode start', () => {
  it('at a terminal (pretty logs): the banner, and no startup log lines repeating it', async () => {
    const { stdout, stderr } = await startOnce('pretty')
    expect(stdout).toMatch(/listening on \/ip4\/127\.0\.0\.1\/tcp\/\d+/)
    expect(stderr).not.toMatch(/\bstarting\b/)
    expect(stderr).not.toMatch(/\bready\b/)
  }, 40_000)

  it('under a supervisor (JSON logs): the ready line is logged', async () => {
    const { stderr } = await startOnce('json')
    const msgs = stderr
      .split('\n')
      .filter((l) => l.startsWith('{')) // a warning of Node's own is plain text
      .map((l) => (JSON.parse(l) as { msg: string }).msg)
    expect(msgs).toContain('starting')
    expect(msgs).toContain('ready')
  }, 40_000)
})
