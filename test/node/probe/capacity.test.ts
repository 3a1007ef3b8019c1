import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import os from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import { GridnodeError } from '../../../src/errors.ts'
import {
  applyGpusFlag,
  BadFlagError,
  parseGpusFlag,
  probeCapacity,
  sampleLoad,
} from '../../../src/node/probe/capacity.ts'
import type { GpuInfo } from '../../../src/scheduler/types.ts'

const FIXTURES = fileURLToPath(new URL('../../fixtures/nvidia-smi/', import.meta.url))

function badFlag(fn: () => unknown): BadFlagError {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(BadFlagError)
    expect(err).toBeInstanceOf(GridnodeError)
    expect((err as GridnodeError).code).toBe('GN_BAD_FLAG')
    return err as BadFlagError
  }
  throw new Error('expected GN_BAD_FLAG')
}

const twoGpus: GpuInfo[] = [
  { index: 0, uuid: 'GPU-a', name: 'NVIDIA RTX A5000', memoryTotalMB: 24564, memoryFreeMB: 24000 },
  { index: 1, uuid: 'GPU-b', name: 'NVIDIA RTX A5000', memoryTotalMB: 24564, memoryFreeMB: 100 },
]

describe('parseGpusFlag', () => {
  it('auto, none and absent', () => {
    expect(parseGpusFlag(undefined)).toEqual({ mode: 'auto' })
    expect(parseGpusFlag('auto')).toEqual({ mode: 'auto' })
    expect(parseGpusFlag('AUTO')).toEqual({ mode: 'auto' })
    expect(parseGpusFlag('none')).toEqual({ mode: 'none' })
    expect(parseGpusFlag(' none ')).toEqual({ mode: 'none' })
  })

  it('comma lists of indexes', () => {
    expect(parseGpusFlag('0')).toEqual({ mode: 'list', indexes: [0] })
    expect(parseGpusFlag('0,2')).toEqual({ mode: 'list', indexes: [0, 2] })
    expect(parseGpusFlag('3, 1')).toEqual({ mode: 'list', indexes: [3, 1] })
  })

  it('anything else is GN_BAD_FLAG with a message that says what is accepted', () => {
    for (const v of [
      '',
      ' ',
      'all',
      'yes',
      '0,',
      ',0',
      '0,,1',
      '-1',
      '1.5',
      '0;1',
      'GPU-abc',
      '0 1',
      '2 GPUs',
    ]) {
      const e = badFlag(() => parseGpusFlag(v))
      expect(e.message, v).toMatch(/^--gpus /)
      expect(e.message, v).toMatch(/none, auto, or comma-separated GPU indexes/)
    }
    expect(badFlag(() => parseGpusFlag('0,1,0')).message).toBe('--gpus 0,1,0: GPU 0 is listed twice')
    expect(badFlag(() => parseGpusFlag('99999999999999999999')).message).toMatch(/not a GPU index/)
  })
})

describe('applyGpusFlag', () => {
  it('auto keeps every probed GPU; none keeps none', () => {
    expect(applyGpusFlag(twoGpus, { mode: 'auto' })).toEqual(twoGpus)
    expect(applyGpusFlag(twoGpus, { mode: 'none' })).toEqual([])
    expect(applyGpusFlag([], { mode: 'auto' })).toEqual([])
  })

  it('a list keeps only those indexes', () => {
    expect(applyGpusFlag(twoGpus, parseGpusFlag('1'))).toEqual([twoGpus[1]])
    expect(applyGpusFlag(twoGpus, parseGpusFlag('0,1'))).toEqual(twoGpus)
  })

  it('an index the machine does not have is GN_BAD_FLAG naming the ones it has', () => {
    expect(badFlag(() => applyGpusFlag(twoGpus, parseGpusFlag('3'))).message).toBe(
      '--gpus 3: this machine has GPUs 0, 1',
    )
    expect(badFlag(() => applyGpusFlag(twoGpus, parseGpusFlag('1,2'))).message).toBe(
      '--gpus 1,2: this machine has GPUs 0, 1',
    )
    expect(badFlag(() => applyGpusFlag([twoGpus[0]], parseGpusFlag('1'))).message).toBe(
      '--gpus 1: this machine has GPU 0',
    )
  })

  it('with nothing probed, a list declares placeholder GPUs', () => {
    expect(applyGpusFlag([], parseGpusFlag('0,2'))).toEqual([
      { index: 0, name: 'GPU 0 (declared by --gpus)' },
      { index: 2, name: 'GPU 2 (declared by --gpus)' },
    ])
  })
})

describe('sampleLoad', () => {
  it('returns free memory in MiB and the 1-minute load', () => {
    const s = sampleLoad()
    expect(Number.isInteger(s.memoryFreeMB)).toBe(true)
    expect(s.memoryFreeMB).toBeGreaterThan(0)
    expect(s.memoryFreeMB).toBeLessThanOrEqual(Math.ceil(os.totalmem() / 2 ** 20))
    expect(s.load1).toBeGreaterThanOrEqual(0)
  })
})

describe('probeCapacity', () => {
  let dir: string
  let a5000x2: string
  let failing: string
  beforeAll(() => {
    dir = mkdtempSync(join(os.tmpdir(), 'gridnode-capacity-'))
    // Prints two GPUs in gridnode's query order (hand-made: no such recording exists).
    a5000x2 = join(dir, 'two-gpus')
    writeFileSync(
      a5000x2,
      '#!/bin/sh\nprintf "0, GPU-a, NVIDIA RTX A5000, 24564, 24000, 3\\n1, GPU-b, NVIDIA RTX A5000, 24564, 100, [N/A]\\n"\n',
    )
    chmodSync(a5000x2, 0o755)
    failing = join(dir, 'exit9')
    writeFileSync(
      failing,
      `#!/bin/sh\ncat '${join(FIXTURES, 'error_driver-not-loaded_exit9.txt')}'\nexit 9\n`,
    )
    chmodSync(failing, 0o755)
  })
  afterAll(() => rmSync(dir, { recursive: true, force: true }))

  it('defaults: slots = cores, memory and load sampled', async () => {
    const c = await probeCapacity({ gpus: 'none' })
    expect(c.cores).toBe(os.availableParallelism())
    expect(c.slots).toBe(c.cores)
    expect(c.memoryTotalMB).toBeGreaterThan(0)
    expect(c.memoryTotalMB).toBeLessThanOrEqual(Math.floor(os.totalmem() / 2 ** 20))
    expect(c.memoryFreeMB).toBeGreaterThan(0)
    expect(c.load1).toBeGreaterThanOrEqual(0)
    expect(c.gpus).toEqual([])
    expect(c.gpuNote).toBe('GPUs disabled by --gpus none')
  })

  it('--cpus sets the slots and must be a positive integer', async () => {
    expect((await probeCapacity({ cpus: 3, gpus: 'none' })).slots).toBe(3)
    for (const cpus of [0, -1, 1.5, Number.NaN, Number.POSITIVE_INFINITY]) {
      await expect(probeCapacity({ cpus, gpus: 'none' }), String(cpus)).rejects.toMatchObject({
        code: 'GN_BAD_FLAG',
      })
    }
  })

  it('a bad --gpus rejects before probing', async () => {
    await expect(probeCapacity({ gpus: 'all' })).rejects.toBeInstanceOf(BadFlagError)
  })

  it.skipIf(process.platform === 'win32')('probes GPUs through nvidia-smi and applies --gpus', async () => {
    const auto = await probeCapacity({ nvidiaSmi: { command: a5000x2 } })
    expect(auto.gpus).toEqual([
      {
        index: 0,
        uuid: 'GPU-a',
        name: 'NVIDIA RTX A5000',
        memoryTotalMB: 24564,
        memoryFreeMB: 24000,
        utilizationPct: 3,
      },
      { index: 1, uuid: 'GPU-b', name: 'NVIDIA RTX A5000', memoryTotalMB: 24564, memoryFreeMB: 100 },
    ])
    expect(auto.gpuNote).toBeUndefined()
    const one = await probeCapacity({ gpus: '1', nvidiaSmi: { command: a5000x2 } })
    expect(one.gpus.map((g) => g.uuid)).toEqual(['GPU-b'])
    await expect(probeCapacity({ gpus: '3', nvidiaSmi: { command: a5000x2 } })).rejects.toThrow(
      '--gpus 3: this machine has GPUs 0, 1',
    )
  })

  it.skipIf(process.platform === 'win32')(
    'a failed probe gives the note; --gpus can still declare GPUs',
    async () => {
      const auto = await probeCapacity({ nvidiaSmi: { command: failing } })
      expect(auto.gpus).toEqual([])
      expect(auto.gpuNote).toMatch(/couldn't communicate with the NVIDIA driver/)
      const declared = await probeCapacity({ gpus: '0', nvidiaSmi: { command: join(dir, 'missing') } })
      expect(declared.gpus).toEqual([{ index: 0, name: 'GPU 0 (declared by --gpus)' }])
      expect(declared.gpuNote).toMatch(/^nvidia-smi not found/)
    },
  )
})
