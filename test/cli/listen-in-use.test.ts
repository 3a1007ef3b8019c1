/** `gridnode start` on an address in use: one line naming the flag and the address, exit 2, no stack. */
import { mkdtempSync, rmSync } from 'node:fs'
import { createServer, type Server } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { listenFailure } from '../../cli/commands/start.ts'
import { runCli } from '../integration/harness.ts'

function inUse(code: string, port: number): NodeJS.ErrnoException {
  return Object.assign(new Error(`listen ${code}: address already in use 127.0.0.1:${port}`), {
    code,
    errno: -98,
    syscall: 'listen',
    address: '127.0.0.1',
    port,
  })
}

function libp2pError(addr: string, inner: string): Error {
  const err = new Error(
    'Some configured addresses failed to be listened on, you may need to remove one or more listen addresses ' +
      'from your configuration or set `transportManager.faultTolerance` to NO_FATAL:\n' +
      `\n  ${addr}: ${inner}\n      at Server.setupListenHandle [as _listen2] (node:net:2328:16)\n`,
  )
  err.name = 'UnsupportedListenAddressesError'
  return err
}

describe('listenFailure', () => {
  const config = { api: '127.0.0.1:4001', metrics: '127.0.0.1:9464' }

  it('names --api or --metrics by the port that failed', () => {
    expect(listenFailure(inUse('EADDRINUSE', 4001), config)).toBe(
      '--api 127.0.0.1:4001: address already in use',
    )
    expect(listenFailure(inUse('EADDRINUSE', 9464), config)).toBe(
      '--metrics 127.0.0.1:9464: address already in use',
    )
    expect(listenFailure(inUse('EADDRNOTAVAIL', 4001), config)).toBe(
      '--api 127.0.0.1:4001: address not available on this machine',
    )
  })

  it('names the address alone when no flag is known', () => {
    expect(listenFailure(inUse('EADDRINUSE', 4001))).toBe(
      'cannot listen on 127.0.0.1:4001: address already in use',
    )
  })

  it("turns libp2p's listen error into --listen lines", () => {
    const err = libp2pError(
      '/ip4/127.0.0.1/tcp/4001',
      'Error: listen EADDRINUSE: address already in use 127.0.0.1:4001',
    )
    expect(listenFailure(err, config)).toBe('--listen /ip4/127.0.0.1/tcp/4001: address already in use')
  })

  it('leaves other errors (genuine bugs keep their stacks)', () => {
    expect(listenFailure(new TypeError('x is undefined'), config)).toBeUndefined()
    expect(
      listenFailure(Object.assign(new Error('nope'), { code: 'ENOENT', syscall: 'open' }), config),
    ).toBeUndefined()
    expect(listenFailure('a string', config)).toBeUndefined()
  })
})

describe('gridnode start on a port in use', () => {
  let server: Server
  let port: number
  let dataDir: string
  beforeAll(async () => {
    server = createServer()
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
    port = (server.address() as { port: number }).port
    dataDir = mkdtempSync(join(tmpdir(), 'gridnode-in-use-'))
  })
  afterAll(() => {
    server.close()
    rmSync(dataDir, { recursive: true, force: true })
  })

  const start = (...flags: string[]) =>
    runCli([
      'start',
      '--data-dir',
      dataDir,
      '--no-mdns',
      '--gpus',
      'none',
      '--sandbox',
      'none',
      '--log-level',
      'error',
      ...flags,
    ])

  it.each([
    ['--api', () => `127.0.0.1:${port}`, () => `gridnode: --api 127.0.0.1:${port}: address already in use`],
    [
      '--listen',
      () => `/ip4/127.0.0.1/tcp/${port}`,
      () => `gridnode: --listen /ip4/127.0.0.1/tcp/${port}: address already in use`,
    ],
  ])(
    '%s: one line naming the flag and the address, exit 2',
    async (flag, value, line) => {
      const r = await start(flag, value())
      const said = r.stderr.split('\n').filter((l) => l !== '' && !l.startsWith('{'))
      expect(said).toEqual([line()])
      expect(r.code).toBe(2)
    },
    30_000,
  )
})
