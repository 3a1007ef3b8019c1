import { chmodSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import fc from 'fast-check'
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest'
import {
  isMissingValue,
  NVIDIA_SMI_QUERY,
  parseNvidiaSmiCsv,
  parseNvidiaSmiListL,
  probeGpus,
} from '../../../src/node/probe/nvidia-smi.ts'

const FIXTURES = fileURLToPath(new URL('../../fixtures/nvidia-smi/', import.meta.url))
const fixturePath = (name: string): string => join(FIXTURES, name)
const fixture = (name: string): string => readFileSync(fixturePath(name), 'utf8')

const TITAN_X = 'query-gpu_csv-noheader-nounits_3x-gtx-titan-x_not-supported.csv'
const P100 = 'query-gpu_csv-nounits_1x-tesla-p100_na-fan.csv'
const H100_ALL = 'query-gpu_csv_1x-h100-80gb-mig-enabled_all-fields.csv'
const EXIT9 = 'error_driver-not-loaded_exit9.txt'
const EXIT18 = 'error_nvml-driver-library-mismatch_exit18.txt'
const NO_DEVICES = 'error_no-devices-found_slurm-job-without-gres.txt'
const LIST_L = 'list-L_1x-h100-80gb_mig-4-instances.txt'
const CAPTURE = 'capture_1x-h100-80gb_mig-4-instances_nvidia_gpu_exporter.txt'

/** The fields gpustat queried when its mock output (the TITAN X file) was recorded. */
const GPUSTAT_FIELDS = [
  'index',
  'uuid',
  'name',
  'temperature.gpu',
  'utilization.gpu',
  'memory.used',
  'memory.total',
]

/** The output of one command in the nvidia_gpu_exporter capture: the lines between its two banners. */
function captureSection(text: string, title: string): string {
  const lines = text.split('\n')
  const start = lines.indexOf(`# ${title}`)
  if (start < 0) throw new Error(`no section ${title}`)
  let i = start
  while (!lines[i].startsWith('#####')) i++
  i++
  const out: string[] = []
  while (i < lines.length && !lines[i].startsWith('#####')) out.push(lines[i++])
  return out.join('\n')
}

function okGpus(p: ReturnType<typeof parseNvidiaSmiCsv>) {
  if (!p.ok) throw new Error(`expected ok, got: ${p.reason}`)
  return p.gpus
}

function failReason(p: ReturnType<typeof parseNvidiaSmiCsv>): string {
  if (p.ok) throw new Error(`expected a failure, got ${JSON.stringify(p.gpus)}`)
  return p.reason
}

describe('NVIDIA_SMI_QUERY', () => {
  it('asks for the fields gridnode reads, headerless and without units', () => {
    expect(NVIDIA_SMI_QUERY).toEqual([
      '--query-gpu=index,uuid,name,memory.total,memory.free,utilization.gpu',
      '--format=csv,noheader,nounits',
    ])
  })
})

describe('parseNvidiaSmiCsv on recorded outputs', () => {
  it('3x GTX TITAN X (gpustat, noheader): [Not Supported] utilization is undefined, not 0', () => {
    const gpus = okGpus(parseNvidiaSmiCsv(fixture(TITAN_X), 0, GPUSTAT_FIELDS))
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-10fb0fbd-2696-43f3-467f-d280d906a107',
        name: 'GeForce GTX TITAN X',
        memoryTotalMB: 12287,
        utilizationPct: 76,
      },
      {
        index: 1,
        uuid: 'GPU-d1df4664-bb44-189c-7ad0-ab86c8cb30e2',
        name: 'GeForce GTX TITAN X',
        memoryTotalMB: 12287,
        utilizationPct: 0,
      },
      {
        index: 2,
        uuid: 'GPU-50205d95-57b6-f541-2bcb-86c09afed564',
        name: 'GeForce GTX TITAN X',
        memoryTotalMB: 12287,
      },
    ])
    expect('utilizationPct' in gpus[2]).toBe(false)
    // gpustat did not query memory.free; total minus used is not a substitute (reserved memory).
    expect(gpus.every((g) => g.memoryFreeMB === undefined)).toBe(true)
  })

  it('3x GTX TITAN X read in gridnode field order: wrong column count, a clear failure', () => {
    const reason = failReason(parseNvidiaSmiCsv(fixture(TITAN_X), 0))
    expect(reason).toMatch(/line 1 has 7 fields, expected 6/)
  })

  it('1x Tesla P100 (netdata, header with units, no index, no memory.total, [N/A] fan)', () => {
    const gpus = okGpus(parseNvidiaSmiCsv(fixture(P100), 0))
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6',
        name: 'Tesla P100-PCIE-16GB',
        // reserved 103 + used 0 + free 16280
        memoryTotalMB: 16383,
        memoryFreeMB: 16280,
        utilizationPct: 0,
      },
    ])
  })

  it('P100 without memory.reserved: memory.total stays unknown rather than used+free', () => {
    const text = fixture(P100)
      .replace('memory.reserved [MiB], ', '')
      .replace(', 103, 0, 16280,', ', 0, 16280,')
    const gpus = okGpus(parseNvidiaSmiCsv(text, 0))
    expect(gpus[0].memoryTotalMB).toBeUndefined()
    expect(gpus[0].memoryFreeMB).toBe(16280)
  })

  it('1x H100 MIG-enabled, all 212 fields with units: reads by field name', () => {
    const gpus = okGpus(parseNvidiaSmiCsv(fixture(H100_ALL), 0))
    expect(gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-00000000-0000-0000-0000-000000000000',
        name: 'NVIDIA H100 80GB HBM3',
        memoryTotalMB: 81559,
        memoryFreeMB: 81022,
      },
    ])
    // utilization.gpu is [N/A] with MIG on: unknown, never 0.
    expect(gpus[0].utilizationPct).toBeUndefined()
  })

  it('the same H100 under load, sliced out of the whole capture', () => {
    const text = fixture(CAPTURE)
    const idle = okGpus(
      parseNvidiaSmiCsv(captureSection(text, 'idle :: query-gpu (csv, what the exporter parses)'), 0),
    )
    expect(idle).toEqual(okGpus(parseNvidiaSmiCsv(fixture(H100_ALL), 0)))
    const load = okGpus(
      parseNvidiaSmiCsv(captureSection(text, 'load :: query-gpu (csv, what the exporter parses)'), 0),
    )
    expect(load).toEqual([
      {
        index: 0,
        uuid: 'GPU-00000000-0000-0000-0000-000000000000',
        name: 'NVIDIA H100 80GB HBM3',
        memoryTotalMB: 81559,
        memoryFreeMB: 69956,
      },
    ])
  })

  it('driver not loaded (exit 9): the message is the reason', () => {
    expect(failReason(parseNvidiaSmiCsv(fixture(EXIT9), 9))).toBe(
      "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
    )
  })

  it('NVML driver/library mismatch (exit 18): the first line is the reason', () => {
    expect(failReason(parseNvidiaSmiCsv(fixture(EXIT18), 18))).toBe(
      'Failed to initialize NVML: Driver/library version mismatch',
    )
  })

  it('exit code is checked before the text: CSV-looking output with exit 255 fails', () => {
    const reason = failReason(parseNvidiaSmiCsv('Failed to initialize NVML: Unknown Error\n', 255))
    expect(reason).toBe('Failed to initialize NVML: Unknown Error')
    expect(failReason(parseNvidiaSmiCsv('0, GPU-x, A, 1, 1, 1\n', 3))).toMatch(/^0, GPU-x/)
    expect(failReason(parseNvidiaSmiCsv('', 9))).toBe('nvidia-smi exited with code 9 and printed nothing')
  })

  it('"No devices were found" (Slurm job without gres) is zero GPUs, whatever the exit code', () => {
    for (const code of [0, 6]) {
      const p = parseNvidiaSmiCsv(fixture(NO_DEVICES), code)
      expect(p).toEqual({ ok: true, gpus: [], note: 'No devices were found' })
    }
  })

  it('empty output is a failure, not zero GPUs', () => {
    expect(failReason(parseNvidiaSmiCsv('', 0))).toBe('nvidia-smi printed nothing')
    expect(failReason(parseNvidiaSmiCsv('\r\n\n', 0))).toBe('nvidia-smi printed nothing')
  })

  it('header with no rows is zero GPUs', () => {
    expect(
      parseNvidiaSmiCsv('index, uuid, name, memory.total [MiB], memory.free [MiB], utilization.gpu [%]\n', 0),
    ).toEqual({ ok: true, gpus: [] })
  })

  it('every other recorded file (XML, -q text, -L) is rejected as CSV, never misread', () => {
    const csvOk = new Set([P100, H100_ALL, NO_DEVICES])
    for (const name of readdirSync(FIXTURES)) {
      if (csvOk.has(name)) continue
      const p = parseNvidiaSmiCsv(fixture(name), 0)
      expect(p.ok, name).toBe(false)
    }
  })
})

describe('parseNvidiaSmiCsv on hand-made input in gridnode field order', () => {
  // No recorded multi-GPU noheader CSV in gridnode's own field order exists (SOURCES.md, "Gaps");
  // these lines follow the format of the recorded ones.
  const four = [
    '0, GPU-aaaaaaaa-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB, 40960, 40326, 0',
    '1, GPU-bbbbbbbb-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB, 40960, 1024, 97',
    '2, GPU-cccccccc-0000-0000-0000-000000000000, NVIDIA A100-SXM4-40GB, 40960, [N/A], [N/A]',
    '3, [N/A], NVIDIA A100-SXM4-40GB, [Not Supported], 40326, [Requested functionality has been deprecated]',
  ]

  it('reads several GPUs; placeholders are undefined', () => {
    const gpus = okGpus(parseNvidiaSmiCsv(four.join('\n') + '\n', 0))
    expect(gpus.map((g) => g.index)).toEqual([0, 1, 2, 3])
    expect(gpus[0]).toEqual({
      index: 0,
      uuid: 'GPU-aaaaaaaa-0000-0000-0000-000000000000',
      name: 'NVIDIA A100-SXM4-40GB',
      memoryTotalMB: 40960,
      memoryFreeMB: 40326,
      utilizationPct: 0,
    })
    expect(gpus[1].memoryFreeMB).toBe(1024)
    expect(gpus[1].utilizationPct).toBe(97)
    expect(gpus[2]).toEqual({
      index: 2,
      uuid: 'GPU-cccccccc-0000-0000-0000-000000000000',
      name: 'NVIDIA A100-SXM4-40GB',
      memoryTotalMB: 40960,
    })
    expect(gpus[3]).toEqual({ index: 3, name: 'NVIDIA A100-SXM4-40GB', memoryFreeMB: 40326 })
  })

  it('tolerates CRLF, no trailing newline, blank lines and spacing after commas', () => {
    const expected = okGpus(parseNvidiaSmiCsv(four.join('\n') + '\n', 0))
    expect(okGpus(parseNvidiaSmiCsv(four.join('\r\n') + '\r\n', 0))).toEqual(expected)
    expect(okGpus(parseNvidiaSmiCsv(four.join('\n'), 0))).toEqual(expected)
    expect(okGpus(parseNvidiaSmiCsv('\n' + four.join('\n\n') + '\n\n', 0))).toEqual(expected)
    const tight = four.map((l) => l.replaceAll(', ', ',')).join('\n')
    expect(okGpus(parseNvidiaSmiCsv(tight, 0))).toEqual(expected)
    const loose = four.map((l) => l.replaceAll(', ', ',   ')).join('\n')
    expect(okGpus(parseNvidiaSmiCsv(loose, 0))).toEqual(expected)
  })

  it('accepts values with units even without a header', () => {
    const gpus = okGpus(parseNvidiaSmiCsv('0, GPU-1, NVIDIA H100 80GB HBM3, 81559 MiB, 81022 MiB, 45 %', 0))
    expect(gpus[0]).toMatchObject({ memoryTotalMB: 81559, memoryFreeMB: 81022, utilizationPct: 45 })
  })

  it('maps a header in another order by field name', () => {
    const text =
      'memory.free [MiB], name, utilization.gpu [%], index, memory.total [MiB], uuid\n9000, Tesla T4, 12, 1, 15360, GPU-t4\n'
    expect(okGpus(parseNvidiaSmiCsv(text, 0))).toEqual([
      {
        index: 1,
        uuid: 'GPU-t4',
        name: 'Tesla T4',
        memoryTotalMB: 15360,
        memoryFreeMB: 9000,
        utilizationPct: 12,
      },
    ])
  })

  it('garbage is a clear failure', () => {
    expect(failReason(parseNvidiaSmiCsv('hello world\n', 0))).toMatch(/line 1 has 1 fields, expected 6/)
    expect(failReason(parseNvidiaSmiCsv(four[0] + ', extra\n', 0))).toMatch(/line 1 has 7 fields/)
    expect(failReason(parseNvidiaSmiCsv(four[0] + '\n' + four[1].slice(0, 20) + '\n', 0))).toMatch(
      /line 2 has/,
    )
    expect(failReason(parseNvidiaSmiCsv('x, GPU-1, A, 1, 1, 1', 0))).toMatch(/index is not a GPU index: "x"/)
    expect(failReason(parseNvidiaSmiCsv('-1, GPU-1, A, 1, 1, 1', 0))).toMatch(/index is not a GPU index/)
    expect(failReason(parseNvidiaSmiCsv('0, GPU-1, A, lots, 1, 1', 0))).toMatch(
      /memory.total is not a number: "lots"/,
    )
    expect(failReason(parseNvidiaSmiCsv('0, GPU-1, A, 1, 1, 1\n0, GPU-2, A, 1, 1, 1', 0))).toMatch(
      /index 0 appears twice/,
    )
  })

  it('never throws, whatever it is given', () => {
    fc.assert(
      fc.property(fc.string(), fc.integer({ min: -1, max: 255 }), (text, code) => {
        const p = parseNvidiaSmiCsv(text, code)
        expect(typeof p.ok).toBe('boolean')
      }),
    )
    const pieces = fc.constantFrom(
      '0',
      '1',
      ',',
      ', ',
      '\n',
      '\r\n',
      '[N/A]',
      'MiB',
      'index',
      'name',
      ' ',
      'GPU-1',
      '%',
    )
    fc.assert(
      fc.property(fc.array(pieces, { maxLength: 40 }), (parts) => {
        const p = parseNvidiaSmiCsv(parts.join(''), 0)
        if (p.ok) for (const g of p.gpus) expect(Number.isInteger(g.index)).toBe(true)
      }),
    )
  })
})

describe('isMissingValue', () => {
  it('knows the placeholders', () => {
    for (const v of [
      '[N/A]',
      '[Not Supported]',
      '[Requested functionality has been deprecated]',
      'N/A',
      '[Unknown Error]',
      '',
    ]) {
      expect(isMissingValue(v), v).toBe(true)
    }
    for (const v of ['0', '0 MiB', 'Tesla T4']) expect(isMissingValue(v), v).toBe(false)
  })
})

describe('parseNvidiaSmiListL', () => {
  it('reads the H100 with its four MIG devices', () => {
    expect(parseNvidiaSmiListL(fixture(LIST_L))).toEqual([
      {
        index: 0,
        name: 'NVIDIA H100 80GB HBM3',
        uuid: 'GPU-00000000-0000-0000-0000-000000000000',
        mig: [
          { profile: '3g.40gb', device: 0, uuid: 'MIG-00000000-0000-0000-0000-000000000000' },
          { profile: '2g.20gb', device: 1, uuid: 'MIG-00000001-0000-0000-0000-000000000001' },
          { profile: '1g.10gb', device: 2, uuid: 'MIG-00000002-0000-0000-0000-000000000002' },
          { profile: '1g.10gb', device: 3, uuid: 'MIG-00000003-0000-0000-0000-000000000003' },
        ],
      },
    ])
  })

  it('is the same list as the capture section, and reads plain GPUs, CRLF and old MIG UUIDs', () => {
    expect(parseNvidiaSmiListL(captureSection(fixture(CAPTURE), 'capabilities :: list (-L)'))).toEqual(
      parseNvidiaSmiListL(fixture(LIST_L)),
    )
    const text =
      'GPU 0: Tesla T4 (UUID: GPU-aaaa)\r\nGPU 1: NVIDIA A100-SXM4-40GB (UUID: GPU-bbbb)\r\n' +
      '  MIG 3g.20gb Device 0: (UUID: MIG-GPU-bbbb/1/0)\r\n'
    expect(parseNvidiaSmiListL(text)).toEqual([
      { index: 0, name: 'Tesla T4', uuid: 'GPU-aaaa', mig: [] },
      {
        index: 1,
        name: 'NVIDIA A100-SXM4-40GB',
        uuid: 'GPU-bbbb',
        mig: [{ profile: '3g.20gb', device: 0, uuid: 'MIG-GPU-bbbb/1/0' }],
      },
    ])
    expect(parseNvidiaSmiListL(fixture(EXIT9))).toEqual([])
  })
})

describe.skipIf(process.platform === 'win32')(
  'probeGpus end to end with scripts standing in for nvidia-smi',
  () => {
    let dir: string
    const script = (name: string, body: string, mode = 0o755): string => {
      const p = join(dir, name)
      writeFileSync(p, `#!/bin/sh\n${body}\n`)
      chmodSync(p, mode)
      return p
    }
    const sq = (s: string): string => `'${s.replaceAll("'", "'\\''")}'`

    beforeAll(() => {
      // A space in the path: the command must run as a path, with no shell in between.
      dir = mkdtempSync(join(tmpdir(), 'gridnode probe '))
    })
    afterAll(() => rmSync(dir, { recursive: true, force: true }))
    afterEach(() => {
      vi.unstubAllEnvs()
    })

    it('runs opts.command with NVIDIA_SMI_QUERY and parses what it prints', async () => {
      const argsFile = join(dir, 'args.txt')
      const cmd = script(
        'h100-all',
        `printf '%s\\n' "$@" > ${sq(argsFile)}\ncat ${sq(fixturePath(H100_ALL))}`,
      )
      const r = await probeGpus({ command: cmd })
      expect(r).toEqual({
        gpus: [
          {
            index: 0,
            uuid: 'GPU-00000000-0000-0000-0000-000000000000',
            name: 'NVIDIA H100 80GB HBM3',
            memoryTotalMB: 81559,
            memoryFreeMB: 81022,
          },
        ],
      })
      expect(readFileSync(argsFile, 'utf8')).toBe(NVIDIA_SMI_QUERY.join('\n') + '\n')
    })

    it('GRIDNODE_NVIDIA_SMI points the default code path at a script', async () => {
      vi.stubEnv('GRIDNODE_NVIDIA_SMI', script('p100', `cat ${sq(fixturePath(P100))}`))
      const r = await probeGpus()
      expect(r.note).toBeUndefined()
      expect(r.gpus).toEqual([
        {
          index: 0,
          uuid: 'GPU-ef1b2c9b-38d8-2090-2bd1-f567a3eb42a6',
          name: 'Tesla P100-PCIE-16GB',
          memoryTotalMB: 16383,
          memoryFreeMB: 16280,
          utilizationPct: 0,
        },
      ])
    })

    it('opts.command wins over GRIDNODE_NVIDIA_SMI', async () => {
      vi.stubEnv('GRIDNODE_NVIDIA_SMI', join(dir, 'does-not-exist'))
      const r = await probeGpus({ command: script('nodev', `cat ${sq(fixturePath(NO_DEVICES))}`) })
      expect(r).toEqual({ gpus: [], note: 'No devices were found' })
    })

    it('exit 9 with the driver message: zero GPUs, the message as note', async () => {
      const r = await probeGpus({ command: script('exit9', `cat ${sq(fixturePath(EXIT9))}\nexit 9`) })
      expect(r).toEqual({
        gpus: [],
        note: "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
      })
    })

    it('exit 18: zero GPUs, the NVML message as note', async () => {
      const r = await probeGpus({ command: script('exit18', `cat ${sq(fixturePath(EXIT18))}\nexit 18`) })
      expect(r).toEqual({ gpus: [], note: 'Failed to initialize NVML: Driver/library version mismatch' })
    })

    it('a crash (killed by a signal) is not reported as a timeout', async () => {
      const r = await probeGpus({ command: script('segv', 'kill -SEGV $$') })
      expect(r).toEqual({ gpus: [], note: expect.stringMatching(/segv was killed by SIGSEGV$/) })
    })

    it('a nonexistent command: zero GPUs, not found', async () => {
      const r = await probeGpus({ command: join(dir, 'no-such-nvidia-smi') })
      expect(r.gpus).toEqual([])
      expect(r.note).toMatch(/^nvidia-smi not found/)
    })

    it('no nvidia-smi on PATH: note "nvidia-smi not found"', async () => {
      vi.stubEnv('GRIDNODE_NVIDIA_SMI', '')
      vi.stubEnv('PATH', join(dir, 'empty-path'))
      expect(await probeGpus()).toEqual({ gpus: [], note: 'nvidia-smi not found' })
    })

    it('a file that is not executable: zero GPUs with a note', async () => {
      const r = await probeGpus({ command: script('not-exec', 'echo hi', 0o644) })
      expect(r.gpus).toEqual([])
      expect(r.note).toMatch(/could not run .*not-exec/)
    })

    it('a hung nvidia-smi times out', async () => {
      const started = Date.now()
      const r = await probeGpus({ command: script('hang', 'exec sleep 30'), timeoutMs: 200 })
      expect(r.gpus).toEqual([])
      expect(r.note).toMatch(/timed out after 200 ms/)
      expect(Date.now() - started).toBeLessThan(5000)
    })

    it('a grandchild still holding stdout after the kill does not delay the answer', async () => {
      const started = Date.now()
      // The shell is killed; its background sleep still holds the pipe (execFile destroys its end on timeout).
      const r = await probeGpus({ command: script('hang-grandchild', 'sleep 5 &\nwait'), timeoutMs: 200 })
      expect(r).toEqual({ gpus: [], note: expect.stringMatching(/timed out after 200 ms/) })
      expect(Date.now() - started).toBeLessThan(4000)
    })
  },
)
