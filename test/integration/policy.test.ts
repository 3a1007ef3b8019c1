/**
 * Trust and owner policy across real daemons: a node whose policy refuses
 * command tasks from the owner never runs them (they run elsewhere), a job
 * nobody accepts shows each node's reason, and a node lent only while its
 * user is idle stops a running task when told "busy" (its CPU time stops
 * advancing), continues it when idle again, and hands it back after the
 * grace period, the job still completing with every result exactly once.
 */
import { readdirSync, readFileSync } from 'node:fs'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect, type Grid } from '../../src/client/index.ts'
import type { WireResult } from '../../src/domain/api.ts'
import { eventually, TestMesh, type TestNode } from './harness.ts'

interface PeerRow {
  peerId: string
  accepts: { command: { all: boolean } } | null
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

/**
 * The burn command tasks running under `node`'s daemon, at any depth (a
 * sandboxed command is daemon → bwrap → bwrap → sh): pid, CPU ticks
 * (utime + stime) and state of each.
 */
function commandProcesses(node: TestNode): Array<{ pid: number; ticks: number; state: string }> {
  const daemon = node.proc?.pid
  const stats = new Map<number, { ppid: number; ticks: number; state: string }>()
  for (const p of readdirSync('/proc')) {
    if (!/^\d+$/.test(p)) continue
    try {
      const text = readFileSync(`/proc/${p}/stat`, 'utf8')
      const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
      stats.set(Number(p), { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]), state: f[0] })
    } catch {
      // gone
    }
  }
  const under = (pid: number): boolean => {
    for (
      let at = stats.get(pid)?.ppid, hops = 0;
      at !== undefined && hops < 16;
      at = stats.get(at)?.ppid, hops++
    ) {
      if (at === daemon) return true
    }
    return false
  }
  const out: Array<{ pid: number; ticks: number; state: string }> = []
  for (const [pid, st] of stats) {
    if (!under(pid)) continue
    try {
      // The shell itself, not the bwrap processes whose command lines carry the same script.
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').trim() !== 'sh') continue
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('date +%s')) continue
    } catch {
      continue
    }
    out.push({ pid, ticks: st.ticks, state: st.state })
  }
  return out
}

function ticksOf(pid: number): number {
  const text = readFileSync(`/proc/${pid}/stat`, 'utf8')
  const f = text.slice(text.lastIndexOf(')') + 2).split(' ')
  return Number(f[11]) + Number(f[12])
}

describe.skipIf(process.platform !== 'linux')('trust and owner policy on a three-node mesh', () => {
  const mesh = new TestMesh('policy')
  let owner: TestNode
  let refuser: TestNode
  let lender: TestNode
  let grid: Grid

  beforeAll(async () => {
    owner = await mesh.add('owner', { cpus: 1 })
    refuser = await mesh.add('refuser', { cpus: 2, bootstrap: [owner.addr] })
    lender = await mesh.add('lender', {
      cpus: 2,
      bootstrap: [owner.addr],
      env: { GRIDNODE_TEST_HOOKS: '1' },
    })
    for (const n of [owner, refuser, lender]) {
      await eventually(
        `${n.name} to see 2 members`,
        async () => (await n.api<unknown[]>('/v1/peers')).length >= 2,
        20_000,
      )
    }
    grid = await connect({ dataDir: owner.dataDir })
  }, 90_000)
  afterAll(() => mesh.stopAll())

  async function refusesCommands(node: TestNode, by: TestNode[]): Promise<void> {
    for (const n of by) {
      await eventually(`${n.name} to see ${node.name}'s policy`, async () => {
        const row = (await n.api<PeerRow[]>('/v1/peers')).find((p) => p.peerId === node.peerId)
        return row?.accepts?.command.all === false
      })
    }
  }

  it('a node whose policy refuses command tasks from the owner never runs them', async () => {
    const set = await refuser.cli(['policy', 'set', 'command', 'none'])
    expect(set.code).toBe(0)
    expect(set.stdout).toMatch(/command tasks from +nobody else/)
    const bad = await refuser.cli(['policy', 'set', 'command', 'bob'])
    expect(bad.code).toBe(2)
    expect(bad.stderr.trim().split('\n')).toHaveLength(1)
    await refusesCommands(refuser, [owner, lender])

    const inputs = Array.from({ length: 24 }, (_, i) => String(i))
    const job = grid.run(['sh', '-c', 'sleep 0.2; echo {}'], inputs)
    const values = await job.results()
    expect(values.map((v) => v.stdout.trim())).toEqual(inputs)
    const stored = await owner.api<WireResult[]>(`/v1/jobs/${await job.id}/results`)
    expect(stored).toHaveLength(24)
    expect(stored.some((r) => r.ranOn === refuser.peerId)).toBe(false)
    expect(stored.some((r) => r.ranOn === lender.peerId)).toBe(true)
  }, 60_000)

  it('a job that no node accepts is blocked, with each node’s reason', async () => {
    await lender.cli(['policy', 'set', 'command', 'none'])
    await refusesCommands(lender, [owner])
    // Two CPUs per task: the owner (one slot) cannot run them itself.
    const job = grid.run(['echo', '{}'], ['x', 'y'], { cpu: 2 })
    const id = await job.id
    const shown = await eventually('the job to show why it is blocked', async () => {
      const r = await owner.cli(['job', id])
      return r.stdout.includes('blocked') ? r.stdout : undefined
    })
    expect(shown).toMatch(/blocked +no node accepts command tasks from 12D3Ko…/)
    expect(shown).toContain(
      `${refuser.peerId.slice(0, 6)}…${refuser.peerId.slice(-6)}: policy allows command tasks from none`,
    )
    expect(shown).toContain(
      `${lender.peerId.slice(0, 6)}…${lender.peerId.slice(-6)}: policy allows command tasks from none`,
    )
    // The lender changes its mind, without a restart: the job runs there.
    await lender.cli(['policy', 'set', 'command', 'all'])
    const values = await job.results()
    expect(values.map((v) => v.stdout.trim())).toEqual(['x', 'y'])
    expect((await owner.cli(['job', id])).stdout).not.toContain('blocked')
  }, 60_000)

  it('when idle: busy stops a running foreign task, idle continues it, the grace period hands it back', async () => {
    const hook = (busy: boolean | null) => lender.api('/v1/test/owner-busy', 'POST', { busy })
    await hook(false)
    for (const [k, v] of [
      ['when', 'idle'],
      ['grace', '3s'],
      ['command', 'all'],
    ])
      expect((await lender.cli(['policy', 'set', k, v])).code).toBe(0)
    // CPU-bound tasks of about 8 s of wall time each (long enough to outlast a pause); the owner has one slot, so the lender gets some.
    const burn = 'end=$(($(date +%s)+8)); while [ $(date +%s) -lt $end ]; do :; done; echo {}'
    const inputs = ['0', '1', '2', '3']
    const job = grid.run(['sh', '-c', burn], inputs)
    const id = await job.id
    const running = await eventually('a task running on the lender', async () => {
      const p = commandProcesses(lender)
      return p.length > 0 ? p : undefined
    })
    const pid = running[0].pid

    await hook(true)
    await eventually(
      'the task stopped',
      async () => commandProcesses(lender).find((p) => p.pid === pid)?.state === 'T',
    )
    const stopped = ticksOf(pid)
    await sleep(1500)
    expect(ticksOf(pid)).toBe(stopped)
    const shown = await lender.cli(['policy', 'show'])
    expect(shown.stdout).toMatch(/now: suspended: the machine is in use/)

    await hook(false)
    await eventually('the task consuming CPU again', async () => ticksOf(pid) > stopped, 5000, 100)

    await hook(true)
    // Past the grace period the task goes back to the owner: its process ends.
    await eventually(
      'the task handed back',
      async () => !commandProcesses(lender).some((p) => p.pid === pid),
      15_000,
    )
    const values = await job.results()
    expect(values.map((v) => v.stdout.trim())).toEqual(inputs)
    const stored = await owner.api<WireResult[]>(`/v1/jobs/${id}/results`)
    expect(stored.map((r) => r.index).sort()).toEqual([0, 1, 2, 3])
    expect(stored.every((r) => r.ok)).toBe(true)
    const status = await owner.api<{ scheduler: { handedBack: number } }>('/v1/status')
    expect(status.scheduler.handedBack).toBeGreaterThanOrEqual(1)
    await hook(null)
  }, 90_000)
})
