import { existsSync } from 'node:fs'
import { describe, expect, it } from 'vitest'
import { checkStartFlags, systemdQuote, unitPath, unitText } from '../../cli/commands/service.ts'
import { runCli } from '../integration/harness.ts'

describe('systemd unit text', () => {
  const base = { node: '/usr/bin/node', bin: '/usr/lib/node_modules/gridnode/bin/gridnode.js' }

  it('a system unit: ExecStart with the start flags, the account, restart on failure, multi-user', () => {
    const text = unitText({
      ...base,
      scope: 'system',
      startFlags: ['--cpus', '4', '--no-mdns'],
      user: 'alice',
    })
    expect(text).toContain(
      'ExecStart=/usr/bin/node /usr/lib/node_modules/gridnode/bin/gridnode.js start --cpus 4 --no-mdns\n',
    )
    expect(text).toContain('User=alice\n')
    expect(text).toContain('Restart=on-failure\n')
    expect(text).toContain('Type=simple\n')
    expect(text).toContain('After=network-online.target\n')
    expect(text).toContain('[Install]\nWantedBy=multi-user.target\n')
    // The README installed beside it (there is no npm registry page to point at).
    expect(text).toContain('Documentation=file:///usr/lib/node_modules/gridnode/README.md\n')
  })

  it('a user unit: no User=, wanted by default.target', () => {
    const text = unitText({ ...base, scope: 'user', startFlags: [], user: 'alice' })
    expect(text).not.toContain('User=')
    expect(text).toContain('WantedBy=default.target\n')
    expect(text).toMatch(/ExecStart=\S+ \S+ start\n/)
  })

  it('quotes arguments as systemd reads them', () => {
    expect(systemdQuote('/ip4/1.2.3.4/tcp/4001/p2p/12D3KooW')).toBe('/ip4/1.2.3.4/tcp/4001/p2p/12D3KooW')
    expect(systemdQuote('/data/my dir')).toBe('"/data/my dir"')
    expect(systemdQuote('50%')).toBe('50%%')
    expect(systemdQuote('$HOME')).toBe('$$HOME')
    expect(systemdQuote('a"b\\c')).toBe('"a\\"b\\\\c"')
    expect(systemdQuote(';')).toBe('";"')
    expect(systemdQuote('')).toBe('""')
  })

  it('puts units where systemd looks for them', () => {
    expect(unitPath('system', 'gridnode')).toBe('/etc/systemd/system/gridnode.service')
    expect(unitPath('user', 'gridnode', { HOME: '/home/a' })).toBe(
      '/home/a/.config/systemd/user/gridnode.service',
    )
    expect(unitPath('user', 'gn2', { HOME: '/home/a', XDG_CONFIG_HOME: '/cfg' })).toBe(
      '/cfg/systemd/user/gn2.service',
    )
  })

  it("checks start flags with start's parser and makes --data-dir absolute", async () => {
    expect(await checkStartFlags(['--data-dir', 'nodes/a', '--cpus', '2'], '/srv')).toEqual([
      '--data-dir',
      '/srv/nodes/a',
      '--cpus',
      '2',
    ])
    expect(await checkStartFlags(['--data-dir=rel'], '/srv')).toEqual(['--data-dir=/srv/rel'])
    await expect(checkStartFlags(['--bogus'])).rejects.toThrow(/unknown option '--bogus'/)
    await expect(checkStartFlags(['--exit-with-parent'])).rejects.toThrow(/exit-with-parent/)
  })
})

describe('gridnode service (command)', () => {
  it('--dry-run prints the unit and the steps, changes nothing', async () => {
    const r = await runCli(['service', 'install', '--user', '--dry-run', '--cpus', '2'], undefined, {
      HOME: '/nonexistent-home',
    })
    expect(r.code).toBe(0)
    expect(r.stdout).toContain('# /nonexistent-home/.config/systemd/user/gridnode.service\n')
    expect(r.stdout).toMatch(/ExecStart=\S+node \S+bin\/gridnode\.js start --cpus 2\n/)
    expect(r.stderr).toContain('loginctl enable-linger')
    expect(r.stderr).toContain('systemctl --user enable --now gridnode.service')
    expect(existsSync('/nonexistent-home')).toBe(false)
  })

  it('a bad start flag is a usage error', async () => {
    const r = await runCli(['service', 'install', '--dry-run', '--cpus'])
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("option '--cpus <n>' argument missing")
  })

  it.skipIf(existsSync('/run/systemd/system'))(
    'refuses where systemd is not running, printing the unit to place by hand',
    async () => {
      const r = await runCli(['service', 'install', '--user', '--no-mdns'], undefined, {
        HOME: '/nonexistent-home',
      })
      expect(r.code).toBe(1)
      expect(r.stdout).toContain('[Service]\n')
      expect(r.stdout).toMatch(/ExecStart=.* start --no-mdns\n/)
      expect(r.stderr).toContain('systemd is not running on this machine')
      expect(r.stderr).toContain('/nonexistent-home/.config/systemd/user/gridnode.service')
      expect(existsSync('/nonexistent-home')).toBe(false)
      const s = await runCli(['service', 'status'])
      expect(s.code).toBe(1)
      expect(s.stderr).toContain('systemd is not running')
    },
  )
})
