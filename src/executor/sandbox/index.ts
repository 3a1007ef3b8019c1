/**
 * Sandboxes for tasks from other nodes: bubblewrap around a Node worker
 * (function tasks) or around the command (command tasks). See host.ts for
 * what a sandbox holds, sandbox-pool.ts for how function workers are kept,
 * probe.ts for how the daemon decides whether it can sandbox at all.
 */

/** `auto`: sandbox when bubblewrap works, else refuse other nodes' tasks; `bwrap`: required; `none`: run them unsandboxed. */
export type SandboxMode = 'auto' | 'bwrap' | 'none'

export const SANDBOX_MODES: readonly SandboxMode[] = ['auto', 'bwrap', 'none']

/** What `gridnode status` and the start banner say about the sandbox. */
export interface SandboxStatus {
  mode: SandboxMode
  /** A working sandbox: tasks from other nodes run in it. */
  available: boolean
  /** Whether this node runs tasks from other nodes at all (sandboxed, or `none`). */
  acceptsForeign: boolean
  reason: string
}

export { bwrapArgs, gpuDevices, type SandboxLimits, type SandboxSpec, sandboxEnv } from './bwrap-args.ts'
export { SandboxHost, type SandboxHostOptions, type SandboxLimitOptions } from './host.ts'
export { findExecutable, type ProbeOptions, type ProbeResult, probeSandbox } from './probe.ts'
export { SandboxPool, type SandboxPoolOptions } from './sandbox-pool.ts'
