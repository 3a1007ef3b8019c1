/**
 * The sandbox's seccomp filter, run through a small classic-BPF interpreter (the instructions the
 * program uses), for every machine it is built for; the real kernel runs it in sandbox.test.ts.
 */
import { describe, expect, test } from 'vitest'
import { DENIED_SYSCALLS, seccompProgram } from '../../src/executor/sandbox/seccomp.ts'

const ALLOW = 0x7fff0000
const EPERM = 0x00050001

/** Runs a seccomp program on (arch, nr) as the kernel would. */
function verdict(program: Uint8Array, arch: number, nr: number): number {
  const view = new DataView(program.buffer, program.byteOffset, program.byteLength)
  const data = new DataView(new ArrayBuffer(64))
  data.setUint32(0, nr, true)
  data.setUint32(4, arch, true)
  let acc = 0
  for (let pc = 0; pc < program.byteLength / 8; pc++) {
    const code = view.getUint16(pc * 8, true)
    const jt = view.getUint8(pc * 8 + 2)
    const jf = view.getUint8(pc * 8 + 3)
    const k = view.getUint32(pc * 8 + 4, true)
    if (code === 0x20) acc = data.getUint32(k, true)
    else if (code === 0x15) pc += acc === k ? jt : jf
    else if (code === 0x35) pc += acc >= k ? jt : jf
    else if (code === 0x06) return k
    else throw new Error(`unexpected instruction ${code.toString(16)}`)
  }
  throw new Error('fell off the end')
}

const MACHINES = {
  x64: { arch: 0xc000003e, nr: [248, 249, 250, 298, 321, 323], allowed: [0, 1, 2, 39, 56, 57, 59, 231, 435] },
  arm64: {
    arch: 0xc00000b7,
    nr: [217, 218, 219, 241, 280, 282],
    allowed: [56, 63, 64, 172, 220, 221, 93, 435],
  },
}

describe('seccompProgram', () => {
  for (const [machine, m] of Object.entries(MACHINES)) {
    test(`${machine}: denies the keyring calls and the rest of the list with EPERM, allows others`, () => {
      const p = seccompProgram(machine)!
      expect(p.byteLength % 8).toBe(0)
      expect(DENIED_SYSCALLS).toHaveLength(m.nr.length)
      for (const nr of m.nr) expect(verdict(p, m.arch, nr)).toBe(EPERM)
      for (const nr of m.allowed) expect(verdict(p, m.arch, nr)).toBe(ALLOW)
      // Another ABI (i386 on x86-64, arm32 on arm64) would number calls differently: refused whole.
      expect(verdict(p, 0x40000003, 1)).toBe(EPERM)
      expect(verdict(p, 0x40000028, 1)).toBe(EPERM)
    })
  }

  test('x64: calls through the x32 ABI (numbers with bit 30) are refused', () => {
    const p = seccompProgram('x64')!
    expect(verdict(p, 0xc000003e, 0x40000000 + 250)).toBe(EPERM)
    expect(verdict(p, 0xc000003e, 0x40000000 + 1)).toBe(EPERM)
  })

  test('no program for machines it does not know', () => {
    expect(seccompProgram('mips')).toBeUndefined()
  })
})
