/** `gridnode demo`: a real local mesh comes up, runs the job across its nodes, and leaves nothing behind. */
import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import type { DemoReport } from '../../cli/demo/summary.ts'
import { runCli } from './harness.ts'

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch {
    return false
  }
}

describe('gridnode demo', () => {
  it('runs Monte Carlo pi on a three-node mesh, reports per node, and cleans up', async () => {
    const r = await runCli([
      'demo',
      '--nodes',
      '3',
      '--cpus',
      '1',
      '--tasks',
      '40',
      '--samples',
      '300000',
      '--json',
    ])
    expect(r.stderr).toBe('')
    expect(r.code).toBe(0)
    const report = JSON.parse(r.stdout) as DemoReport
    expect(Math.abs(report.pi - Math.PI)).toBeLessThan(0.01)
    expect(report.samples).toBe(40 * 300_000)
    expect(report.nodes).toHaveLength(3)
    expect(report.nodes.reduce((n, x) => n + x.tasks, 0)).toBe(40)
    for (const n of report.nodes) {
      expect(n.peerId).toMatch(/^12D3KooW/)
      expect(n.busyMs).toBeGreaterThanOrEqual(0)
      expect(alive(n.pid)).toBe(false)
    }
    expect(existsSync(report.dataRoot)).toBe(false)
  }, 60_000)

  it('cleans up when interrupted with Ctrl-C', async () => {
    const { spawn } = await import('node:child_process')
    const { BIN } = await import('./harness.ts')
    const proc = spawn(
      process.execPath,
      [BIN, 'demo', '--nodes', '2', '--tasks', '400', '--samples', '2000000'],
      {
        env: { ...process.env, GRIDNODE_FROM_SOURCE: '1' },
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    )
    let stderr = ''
    proc.stderr.on('data', (d: Buffer) => {
      stderr += d.toString()
    })
    const exited = new Promise<number | null>((resolve) => proc.on('close', (code) => resolve(code)))
    const deadline = Date.now() + 30_000
    while (!stderr.includes('submits') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100))
    expect(stderr).toContain('submits')
    const dirs = [...stderr.matchAll(/(\S*gridnode-demo-\w+)/g)].map((m) => m[1])
    expect(dirs.length).toBeGreaterThan(0)
    proc.kill('SIGINT')
    expect(await exited).toBe(130)
    expect(stderr).toContain('interrupted; stopping the mesh')
    for (const d of dirs) expect(existsSync(d)).toBe(false)
  }, 60_000)
})
