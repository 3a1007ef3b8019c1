/** The sandbox's command line, device list, environment and wire, as pure functions. */
import { describe, expect, test } from 'vitest'
import { bwrapArgs, gpuDevices, type SandboxSpec, sandboxEnv } from '../../src/executor/sandbox/bwrap-args.ts'
import {
  decodeFromSandbox,
  encodeReady,
  encodeResult,
  encodeToWorker,
  FrameError,
  FrameReader,
} from '../../src/executor/sandbox/frames.ts'

const spec = (over: Partial<SandboxSpec> = {}): SandboxSpec => ({
  bwrap: '/usr/bin/bwrap',
  scratchDir: '/data/sandbox/s1/work',
  roBinds: [['/opt/node', '/gridnode/node']],
  devices: [],
  env: { PATH: '/usr/bin', HOME: '/work' },
  limits: { dataBytes: 1 << 30, cpuSeconds: 60, fileSizeBytes: 1 << 20, processes: 64 },
  tmpBytes: 1 << 20,
  argv: ['sh', '-c', 'true'],
  ...over,
})

const argAfter = (args: string[], flag: string) => args[args.indexOf(flag) + 1]

describe('bwrapArgs', () => {
  test('root: no user namespace, no network, drops to the uid with setpriv under prlimit', () => {
    const args = bwrapArgs(spec({ uid: 2_000_000_003 }))
    expect(args).toContain('--unshare-net')
    expect(args).toContain('--unshare-pid')
    expect(args).not.toContain('--unshare-all')
    expect(args).toEqual(expect.arrayContaining(['--die-with-parent', '--new-session', '--clearenv']))
    const cmd = args.slice(args.indexOf('--') + 1)
    expect(cmd).toEqual([
      'prlimit',
      `--data=${1 << 30}`,
      '--cpu=60',
      `--fsize=${1 << 20}`,
      '--nproc=64',
      '--core=0',
      '--',
      'setpriv',
      '--reuid=2000000003',
      '--regid=2000000003',
      '--clear-groups',
      '--inh-caps=-all',
      '--bounding-set=-all',
      '--no-new-privs',
      '--',
      'sh',
      '-c',
      'true',
    ])
  })

  test('not root: an unprivileged user namespace, every capability dropped, no further namespaces', () => {
    const args = bwrapArgs(spec())
    expect(args.slice(0, 5)).toEqual([
      '--unshare-all',
      '--unshare-user',
      '--disable-userns',
      '--cap-drop',
      'ALL',
    ])
    expect(args).not.toContain('setpriv')
    expect(args).not.toContain('--share-net')
  })

  test('the network only when asked', () => {
    expect(bwrapArgs(spec({ uid: 5, network: true }))).not.toContain('--unshare-net')
    expect(bwrapArgs(spec({ network: true }))).toContain('--share-net')
  })

  test('system read-only, scratch read-write at /work as cwd, extra binds read-only, env set one by one', () => {
    const args = bwrapArgs(spec({ devices: ['/dev/nvidia1'] }))
    expect(argAfter(args, '--bind')).toBe('/data/sandbox/s1/work')
    expect(args[args.indexOf('--bind') + 2]).toBe('/work')
    expect(argAfter(args, '--chdir')).toBe('/work')
    expect(args.join(' ')).toContain('--ro-bind-try /usr /usr')
    expect(args.join(' ')).toContain('--ro-bind /opt/node /gridnode/node')
    expect(args.join(' ')).toContain('--dev-bind /dev/nvidia1 /dev/nvidia1')
    expect(args.join(' ')).toContain('--setenv PATH /usr/bin --setenv HOME /work')
    // Nothing of the host's home or data dirs is mounted.
    expect(args.filter((a) => a.startsWith('/root') || a.startsWith('/home'))).toEqual([])
  })
})

describe('gpuDevices', () => {
  const all = new Set(['/dev/nvidia0', '/dev/nvidia1', '/dev/nvidia2', '/dev/nvidiactl', '/dev/nvidia-uvm'])
  const exists = (p: string) => all.has(p)

  test('exactly the assigned GPUs, plus the shared nodes that exist', () => {
    expect(gpuDevices([2, 0], exists)).toEqual([
      '/dev/nvidia0',
      '/dev/nvidia2',
      '/dev/nvidiactl',
      '/dev/nvidia-uvm',
    ])
  })

  test('no GPUs: no device at all; missing nodes and bad indexes are left out', () => {
    expect(gpuDevices([], exists)).toEqual([])
    expect(gpuDevices([7, -1, 1.5], exists)).toEqual(['/dev/nvidiactl', '/dev/nvidia-uvm'])
    expect(gpuDevices([1, 1], () => true)).toEqual([
      '/dev/nvidia1',
      '/dev/nvidiactl',
      '/dev/nvidia-uvm',
      '/dev/nvidia-uvm-tools',
      '/dev/nvidia-modeset',
    ])
  })
})

describe('sandboxEnv', () => {
  test('only PATH, LANG, HOME, TMPDIR, the job’s variables and the CUDA ones', () => {
    expect(sandboxEnv()).toEqual({
      PATH: '/usr/local/bin:/usr/bin:/bin',
      LANG: 'C.UTF-8',
      HOME: '/work',
      TMPDIR: '/tmp',
    })
    const env = sandboxEnv({ env: { MINE: '1' }, gpus: [3, 1], lang: 'de_DE.UTF-8' })
    expect(env).toMatchObject({
      MINE: '1',
      LANG: 'de_DE.UTF-8',
      CUDA_VISIBLE_DEVICES: '3,1',
      CUDA_DEVICE_ORDER: 'PCI_BUS_ID',
    })
    expect(sandboxEnv({ lang: 'x; rm -rf /' }).LANG).toBe('C.UTF-8')
    expect(sandboxEnv({ gpus: [] }).CUDA_VISIBLE_DEVICES).toBe('')
  })
})

describe('frames', () => {
  test('results round trip, whole or cut into pieces', () => {
    const results = [
      { id: 1, status: 'ok' as const, value: new Uint8Array([1, 2, 3]), ms: 1.5 },
      { id: 2, status: 'threw' as const, error: 'TypeError: boom', stack: 'at x', ms: 0 },
      { id: 0xffff_fffe, status: 'rejected' as const, error: 'héllo', ms: 3 },
    ]
    const bytes = Buffer.concat([encodeReady(), ...results.map(encodeResult)])
    for (const step of [bytes.length, 1, 7]) {
      const reader = new FrameReader()
      const frames: Buffer[] = []
      for (let i = 0; i < bytes.length; i += step) frames.push(...reader.push(bytes.subarray(i, i + step)))
      expect(frames.map(decodeFromSandbox)).toEqual([
        { type: 'ready' },
        ...results.map((result) => ({ type: 'result', result })),
      ])
    }
  })

  test('a worker’s bad bytes are FrameErrors, never a huge allocation', () => {
    const reader = new FrameReader(1024)
    const big = Buffer.alloc(4)
    big.writeUInt32BE(0xffff_ffff)
    expect(() => reader.push(big)).toThrow(FrameError)
    expect(() => decodeFromSandbox(Buffer.from([9]))).toThrow(FrameError)
    const ok = encodeResult({ id: 1, status: 'ok', value: new Uint8Array(10), ms: 1 }).subarray(4)
    expect(() => decodeFromSandbox(ok.subarray(0, ok.length - 3))).toThrow(FrameError)
    expect(() => decodeFromSandbox(Buffer.concat([ok, Buffer.from([0])]))).toThrow(FrameError)
    const badStatus = Buffer.from(ok)
    badStatus[5] = 9
    expect(() => decodeFromSandbox(badStatus)).toThrow(FrameError)
  })

  test('tasks to the worker are length-prefixed v8 bytes', () => {
    const f = encodeToWorker({ type: 'cancel', id: 5 })
    expect(f.readUInt32BE(0)).toBe(f.length - 4)
  })
})
