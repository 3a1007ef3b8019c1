/**
 * GRIDNODE_NVIDIA_SMI names a program run in nvidia-smi's place. Pointed at a
 * recorded output itself (a plain file), the probe says what it wants instead
 * of a bare EACCES; a script that cats the recording drives the probe.
 */
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it, vi } from 'vitest'
import { probeGpus } from '../../../src/node/probe/nvidia-smi.ts'

const FIXTURES = fileURLToPath(new URL('../../fixtures/nvidia-smi/', import.meta.url))
const P100 = join(FIXTURES, 'query-gpu_csv-nounits_1x-tesla-p100_na-fan.csv')

afterEach(() => {
  vi.unstubAllEnvs()
})

describe('GRIDNODE_NVIDIA_SMI', () => {
  it('pointed at a recorded file, not a program: zero GPUs and a note saying what it must be', async () => {
    vi.stubEnv('GRIDNODE_NVIDIA_SMI', P100)
    const r = await probeGpus()
    expect(r.gpus).toEqual([])
    expect(r.note).toBe(
      `GRIDNODE_NVIDIA_SMI=${P100} is not executable: it must name a program run in nvidia-smi's place ` +
        '(for a recorded output, a script that cats it)',
    )
  })

  it('pointed at a missing path: says so, naming the variable', async () => {
    vi.stubEnv('GRIDNODE_NVIDIA_SMI', join(tmpdir(), 'no-such-smi-here'))
    expect((await probeGpus()).note).toMatch(/^GRIDNODE_NVIDIA_SMI=.*no-such-smi-here names no file/)
  })

  it('a script that cats the recording drives the probe', async () => {
    const script = join(mkdtempSync(join(tmpdir(), 'gridnode-smi-')), 'nvidia-smi')
    writeFileSync(script, `#!/bin/sh\ncat '${P100}'\n`)
    chmodSync(script, 0o755)
    vi.stubEnv('GRIDNODE_NVIDIA_SMI', script)
    const r = await probeGpus()
    expect(r.note).toBeUndefined()
    expect(r.gpus.map((g) => g.name)).toEqual(['Tesla P100-PCIE-16GB'])
  })
})
