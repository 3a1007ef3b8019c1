/**
 * The seccomp filter every sandbox runs under (bwrap `--seccomp <fd>`): a
 * classic BPF program, as `seccomp_export_bpf` would write it, that fails a
 * few system calls with EPERM and allows the rest.
 *
 * - The kernel keyrings (`add_key`, `keyctl`, `request_key`): a uid's keyring
 *   lives as long as the machine, not the task, and sandbox uids are reused
 *   (host.ts), so a key one job added was read by a later job of another owner
 *   (found by an adversarial review). Docker's default profile denies them too.
 * - `bpf`, `perf_event_open`, `userfaultfd`: kernel attack surface no task
 *   needs (also denied by Docker's default profile).
 * - Any call made through another ABI than the machine's own (i386 or x32 on
 *   x86-64): their numbers differ, so they would walk around the list.
 *
 * Pure: the program as bytes, for x86-64 and arm64; other machines get none
 * (the sandbox then runs without a filter, as it did before).
 */

/** Denied calls by machine, and the audit arch the kernel reports for its own ABI. */
const MACHINES: Record<string, { auditArch: number; x32: boolean; nr: Record<string, number> }> = {
  x64: {
    auditArch: 0xc000003e, // AUDIT_ARCH_X86_64
    x32: true,
    nr: { add_key: 248, request_key: 249, keyctl: 250, perf_event_open: 298, bpf: 321, userfaultfd: 323 },
  },
  arm64: {
    auditArch: 0xc00000b7, // AUDIT_ARCH_AARCH64
    x32: false,
    nr: { add_key: 217, request_key: 218, keyctl: 219, perf_event_open: 241, bpf: 280, userfaultfd: 282 },
  },
}

export const DENIED_SYSCALLS = ['add_key', 'request_key', 'keyctl', 'perf_event_open', 'bpf', 'userfaultfd']

const LD_W_ABS = 0x20 // BPF_LD | BPF_W | BPF_ABS
const JEQ_K = 0x15 // BPF_JMP | BPF_JEQ | BPF_K
const JGE_K = 0x35 // BPF_JMP | BPF_JGE | BPF_K
const RET_K = 0x06 // BPF_RET | BPF_K
const SECCOMP_RET_ALLOW = 0x7fff0000
const SECCOMP_RET_ERRNO = 0x00050000
const EPERM = 1
/** Offsets in struct seccomp_data. */
const NR = 0
const ARCH = 4
/** x32 system calls carry this bit in their number. */
const X32_SYSCALL_BIT = 0x40000000

interface Insn {
  code: number
  jt: number
  jf: number
  k: number
}

/** The filter for `arch` (Node's process.arch), or undefined where there is none. */
export function seccompProgram(arch: string = process.arch): Uint8Array | undefined {
  const m = MACHINES[arch]
  if (m === undefined) return undefined
  const denied = DENIED_SYSCALLS.map((name) => m.nr[name])
  // Laid out so every jump goes forward to one of the two returns at the end.
  const body: Array<Omit<Insn, 'jt' | 'jf'> & { onTrue?: 'deny' | 'allow'; onFalse?: 'deny' | 'allow' }> = [
    { code: LD_W_ABS, k: ARCH },
    { code: JEQ_K, k: m.auditArch, onFalse: 'deny' },
    { code: LD_W_ABS, k: NR },
    ...(m.x32 ? [{ code: JGE_K, k: X32_SYSCALL_BIT, onTrue: 'deny' as const }] : []),
    ...denied.map((k) => ({ code: JEQ_K, k, onTrue: 'deny' as const })),
  ]
  const allowAt = body.length
  const denyAt = allowAt + 1
  const insns: Insn[] = body.map((b, i) => {
    const to = (where: 'deny' | 'allow' | undefined) =>
      where === undefined ? 0 : (where === 'deny' ? denyAt : allowAt) - i - 1
    return { code: b.code, k: b.k, jt: to(b.onTrue), jf: to(b.onFalse) }
  })
  insns.push({ code: RET_K, jt: 0, jf: 0, k: SECCOMP_RET_ALLOW })
  insns.push({ code: RET_K, jt: 0, jf: 0, k: SECCOMP_RET_ERRNO | EPERM })
  // struct sock_filter { u16 code; u8 jt; u8 jf; u32 k; }, in the machine's (little-endian) order.
  const out = new DataView(new ArrayBuffer(insns.length * 8))
  insns.forEach((insn, i) => {
    out.setUint16(i * 8, insn.code, true)
    out.setUint8(i * 8 + 2, insn.jt)
    out.setUint8(i * 8 + 3, insn.jf)
    out.setUint32(i * 8 + 4, insn.k, true)
  })
  return new Uint8Array(out.buffer)
}
