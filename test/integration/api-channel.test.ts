/**
 * The API channel on a real daemon: the library's requests go over it, and a
 * hostile local process (fixtures/api-attacker.ts, its own process) that
 * sends it malformed, oversized, duplicate and unread frames gets refused or
 * cut off while the daemon keeps answering everyone else and keeps running.
 */
import { spawn } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { connect } from '../../src/client/index.ts'
import { REPO, TestMesh, type TestNode } from './harness.ts'

const WORK = new URL('./fixtures/work.ts', import.meta.url)
const ATTACKER = join(REPO, 'test', 'integration', 'fixtures', 'api-attacker.ts')

interface Report {
  what: string
  status: number
  closed: boolean | null
  answers: Array<{ id: number; status: number; code?: string }>
  during?: number
  after: number
}

function attack(node: TestNode): Promise<Report[]> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [ATTACKER, node.ready!.api, join(node.dataDir, 'api.token')], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    let err = ''
    proc.stdout.on('data', (d: Buffer) => {
      out += d
    })
    proc.stderr.on('data', (d: Buffer) => {
      err += d
    })
    const timer = setTimeout(() => proc.kill('SIGKILL'), 60_000)
    proc.on('error', reject)
    proc.on('close', (code) => {
      clearTimeout(timer)
      if (code !== 0) return reject(new Error(`the attacker exited ${code}: ${err}`))
      resolve(
        out
          .trim()
          .split('\n')
          .map((l) => JSON.parse(l) as Report),
      )
    })
  })
}

describe('the API channel of a real daemon', () => {
  const mesh = new TestMesh('api-channel')
  let node: TestNode

  beforeAll(async () => {
    node = await mesh.add('solo', { cpus: 2 })
  }, 60_000)
  afterAll(() => mesh.stopAll())

  it('carries the library: single tasks and a job, one channel for the process', async () => {
    const grid = await connect({ dataDir: node.dataDir })
    const singles = await Promise.all(
      Array.from({ length: 20 }, (_, i) => grid.submit<number>(WORK, 'square', [i])),
    )
    expect(singles).toEqual(Array.from({ length: 20 }, (_, i) => i * i))
    for (let i = 0; i < 5; i++)
      expect(await grid.submit<number>(WORK, 'square', [i + 100])).toBe((i + 100) ** 2)
    expect(await grid.map<number, number>(WORK, 'square', [1, 2, 3]).results()).toEqual([1, 4, 9])
    const status = await node.api<{ api: { channels: number } }>('/v1/status')
    expect(status.api.channels).toBe(1)
  })

  it('refuses or cuts off a hostile local process, and keeps answering everyone else', async () => {
    const reports = await attack(node)
    const by = new Map(reports.map((r) => [r.what, r]))
    expect([...by.keys()]).toHaveLength(8)
    expect(by.get('no token')).toMatchObject({ status: 401, closed: true })
    for (const what of [
      'random bytes',
      'a 4 GiB length prefix',
      'one byte over the largest request frame',
      'the same request id twice in flight',
    ])
      expect(by.get(what), what).toMatchObject({ status: 101, closed: true })
    // Wrong requests are answered, not fatal.
    expect(
      by
        .get('a submit of garbage bytes and one of bad JSON')!
        .answers.map((a) => [a.id, a.status])
        .sort(),
    ).toEqual([
      [1, 400],
      [2, 400],
      [3, 400],
    ])
    expect(by.get('a 60 MiB frame cut off after 4 MiB')!.during).toBe(200)
    expect(by.get('20,000 requests whose answers are never read')!.during).toBe(200)
    for (const r of reports) expect(r.after, r.what).toBe(200)

    // The daemon still runs work, for a client that behaves.
    const grid = await connect({ dataDir: node.dataDir })
    expect(await grid.submit<number>(WORK, 'square', [12])).toBe(144)
    expect(node.proc!.exitCode).toBeNull()
    const log = readFileSync(join(node.dataDir, 'daemon.log'), 'utf8')
    expect(log).toMatch(/API channel: a malformed frame; closing the channel/)
  }, 90_000)
})
