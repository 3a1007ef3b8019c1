import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { loadConfig, mergeConfig, readConfigFile, resolveDataDir } from '../../src/node/config/load.ts'
import { parseHostPort } from '../../src/node/config/schema.ts'

const PEER = '12D3KooWAYQzDnbFoF9wWCzARHb4DK1tfn3PFG5VxtR4XVapn7FA'

function tempDir(): string {
  return mkdtempSync(join(tmpdir(), 'gridnode-config-'))
}

describe('config', () => {
  it('resolves the data dir from the flag, then GRIDNODE_HOME, then ~/.gridnode', () => {
    expect(resolveDataDir('/tmp/x', { GRIDNODE_HOME: '/tmp/y' })).toBe('/tmp/x')
    expect(resolveDataDir(undefined, { GRIDNODE_HOME: '/tmp/y' })).toBe('/tmp/y')
    expect(resolveDataDir(undefined, {})).toMatch(/\.gridnode$/)
  })

  it('merges defaults < config file < flags, ignoring flags that were not given', () => {
    const c = mergeConfig('/d', { mesh: 'lab', cpus: 3, mdns: false }, { mesh: 'render', cpus: undefined })
    expect(c.mesh).toBe('render')
    expect(c.cpus).toBe(3)
    expect(c.mdns).toBe(false)
    expect(c.listen).toEqual(['/ip4/0.0.0.0/tcp/0'])
    expect(c.dataDir).toBe('/d')
  })

  it('reads config.json from the data dir and lets flags win', () => {
    const dir = tempDir()
    writeFileSync(
      join(dir, 'config.json'),
      JSON.stringify({ mesh: 'lab', bootstrap: [`/ip4/127.0.0.1/tcp/4001/p2p/${PEER}`] }),
    )
    const c = loadConfig({ dataDir: dir, bootstrap: [`/ip4/127.0.0.1/tcp/5001/p2p/${PEER}`] })
    expect(c.mesh).toBe('lab')
    expect(c.bootstrap).toEqual([`/ip4/127.0.0.1/tcp/5001/p2p/${PEER}`])
  })

  it('rejects unknown keys and bad JSON in config.json with the path in the message', () => {
    const dir = tempDir()
    writeFileSync(join(dir, 'config.json'), JSON.stringify({ mehs: 'typo' }))
    expect(() => readConfigFile(dir)).toThrow(/unknown setting "mehs"/)
    writeFileSync(join(dir, 'config.json'), '{ nope')
    expect(() => readConfigFile(dir)).toThrow(/config\.json is not valid JSON/)
  })

  it.each([
    [{ mesh: 'no spaces' }, /--mesh/],
    [{ cpus: 0 }, /--cpus 0/],
    [{ cpus: 2.5 }, /--cpus 2.5/],
    [{ listen: ['tcp:4001'] }, /--listen "tcp:4001"/],
    [{ bootstrap: ['127.0.0.1:4001'] }, /--bootstrap/],
    [{ api: 'localhost' }, /--api "localhost"/],
    [{ api: '0.0.0.0:7070' }, /loopback only/],
    [{ logLevel: 'loud' as 'info' }, /--log-level loud/],
  ])('rejects %j with a message naming the flag', (flags, message) => {
    expect(() => mergeConfig('/d', {}, flags)).toThrow(message)
  })

  it('parses host:port including IPv6 loopback', () => {
    expect(parseHostPort('127.0.0.1:7070')).toEqual({ host: '127.0.0.1', port: 7070 })
    expect(parseHostPort('[::1]:0')).toEqual({ host: '::1', port: 0 })
    expect(() => parseHostPort('127.0.0.1:99999')).toThrow(/--api/)
  })
})
