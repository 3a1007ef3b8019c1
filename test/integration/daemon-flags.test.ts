/**
 * `gridnode start` replaces itself (execve) with Node's young generation fixed
 * at 16 MB (bin/gridnode.js): the daemon keeps its pid, its stdio and its
 * ready line, and runs with the flags; flags the user gives Node win.
 */
import { readFileSync } from 'node:fs'
import { afterAll, describe, expect, it } from 'vitest'
import { TestMesh } from './harness.ts'

const mesh = new TestMesh('daemon-flags')
afterAll(() => mesh.stopAll())

const cmdline = (pid: number | undefined): string[] =>
  readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean)

describe.skipIf(typeof process.execve !== 'function')('gridnode start', () => {
  it('runs the daemon with a fixed 16 MB young generation, same pid as spawned', async () => {
    const node = await mesh.add('n0')
    const args = cmdline(node.proc?.pid)
    expect(args).toContain('--min-semi-space-size=16')
    expect(args).toContain('--max-semi-space-size=16')
    expect(args.filter((a) => a.includes('semi-space-size'))).toHaveLength(2)
    expect(args).toContain('start')
    // The ready line came through the replaced process's stdout, and its API answers.
    expect((await node.api<{ peerId: string }>('/v1/status')).peerId).toBe(node.peerId)
  })

  it('leaves the flags to the user when Node was given one', async () => {
    const before = process.env.GRIDNODE_TEST_NODE_ARGS
    process.env.GRIDNODE_TEST_NODE_ARGS = '--max-semi-space-size=8'
    try {
      const node = await mesh.add('n1', { join: false, mesh: 'other' })
      const args = cmdline(node.proc?.pid)
      expect(args.filter((a) => a.includes('semi-space-size'))).toEqual(['--max-semi-space-size=8'])
    } finally {
      if (before === undefined) delete process.env.GRIDNODE_TEST_NODE_ARGS
      else process.env.GRIDNODE_TEST_NODE_ARGS = before
    }
  })
})
