/**
 * The bubblewrap command line for one sandbox, as a pure function of what
 * the sandbox holds, so every flag is tested without running it.
 *
 * Inside: a read-only system (/usr, /etc, /bin, /lib...), a fresh /proc and
 * minimal read-only /dev, a small private /tmp and /dev/shm, the sandbox's scratch dir read-write
 * at /work (its cwd and HOME), the extra read-only binds it is given (the
 * Node binary, gridnode's worker code, a task bundle) under /gridnode, and
 * the GPU device nodes it was assigned. No network (an empty network
 * namespace), its own PID, IPC and UTS namespaces, a new session, killed
 * with its parent, a seccomp filter (seccomp.ts). Nothing of the daemon's environment: only what
 * `sandboxEnv` builds. Limits are rlimits set by prlimit (util-linux).
 *
 * Two ways in:
 * - The daemon runs as root: bwrap runs privileged (no user namespace) and
 *   `setpriv` drops the command to `uid` (its own per sandbox, so process
 *   counts are per sandbox), with no capabilities, no supplementary groups
 *   and no_new_privs. Root's files stay root's.
 * - Otherwise bwrap makes an unprivileged user namespace (`--unshare-all`),
 *   drops every capability and forbids further user namespaces; the
 *   command runs as the daemon's user, which sees nothing of the data dir or
 *   any home dir because none is mounted.
 */

/** Where the scratch dir appears inside the sandbox (cwd and HOME). */
export const SANDBOX_WORK = '/work'
/** The parent of the read-only binds gridnode adds (node, code, bundle). */
export const SANDBOX_GRIDNODE = '/gridnode'
export const SANDBOX_PATH = '/usr/local/bin:/usr/bin:/bin'
const SYSTEM_DIRS = ['/usr', '/etc', '/bin', '/sbin', '/lib', '/lib64', '/lib32', '/libx32']
const GPU_SHARED_DEVICES = [
  '/dev/nvidiactl',
  '/dev/nvidia-uvm',
  '/dev/nvidia-uvm-tools',
  '/dev/nvidia-modeset',
]

export interface SandboxLimits {
  /** RLIMIT_DATA: private writable memory per process (bytes). */
  dataBytes: number
  /** RLIMIT_CPU: CPU seconds per process. */
  cpuSeconds: number
  /** RLIMIT_FSIZE: largest file a process may write (bytes). */
  fileSizeBytes: number
  /** RLIMIT_NPROC: processes and threads of the sandbox's user. */
  processes: number
}

export interface SandboxSpec {
  /** The bwrap executable. */
  bwrap: string
  /** Set when the daemon runs as root: the uid (and gid) the command drops to. */
  uid?: number
  /** Host directory bound read-write at /work. */
  scratchDir: string
  /** Extra read-only binds: [host path, path inside]. */
  roBinds: Array<[string, string]>
  /** Device nodes bound as they are (GPUs). */
  devices: string[]
  env: Record<string, string>
  limits: SandboxLimits
  /** Size of the private /tmp (bytes). */
  tmpBytes: number
  /** The command to run inside, argv[0] looked up on the sandbox's PATH. */
  argv: string[]
  /** Keep the host's network (trust policy `network`); default: an empty network namespace. */
  network?: boolean
  /** The descriptor (in bwrap) to read the seccomp filter from (seccomp.ts); none: no filter. */
  seccompFd?: number
}

export function bwrapArgs(spec: SandboxSpec): string[] {
  const privileged = spec.uid !== undefined
  const args = privileged
    ? ['--unshare-ipc', '--unshare-pid', '--unshare-uts', '--unshare-cgroup-try']
    : ['--unshare-all', '--unshare-user', '--disable-userns', '--cap-drop', 'ALL']
  if (privileged && spec.network !== true) args.push('--unshare-net')
  if (!privileged && spec.network === true) args.push('--share-net')
  args.push('--die-with-parent', '--new-session')
  for (const dir of SYSTEM_DIRS) args.push('--ro-bind-try', dir, dir)
  const tmpSize = String(Math.max(1, Math.floor(spec.tmpBytes)))
  // bwrap's /dev is a tmpfs with no size of its own (half the machine's memory), writable by the
  // command in a user namespace, and counted against no limit of the task's: read-only here, with
  // /dev/shm (POSIX shared memory, Python's multiprocessing locks) a tmpfs of /tmp's size.
  args.push('--proc', '/proc', '--dev', '/dev')
  args.push('--size', tmpSize, '--perms', '1777', '--tmpfs', '/dev/shm', '--remount-ro', '/dev')
  args.push('--size', tmpSize, '--perms', '1777', '--tmpfs', '/tmp')
  args.push('--perms', '0755', '--dir', SANDBOX_GRIDNODE)
  args.push('--bind', spec.scratchDir, SANDBOX_WORK, '--chdir', SANDBOX_WORK)
  for (const [from, to] of spec.roBinds) args.push('--ro-bind', from, to)
  for (const dev of spec.devices) args.push('--dev-bind', dev, dev)
  if (spec.seccompFd !== undefined) args.push('--seccomp', String(spec.seccompFd))
  args.push('--clearenv')
  for (const [k, v] of Object.entries(spec.env)) args.push('--setenv', k, v)
  args.push('--', ...prlimitArgs(spec.limits))
  if (privileged) args.push(...setprivArgs(spec.uid!))
  args.push(...spec.argv)
  return args
}

export function prlimitArgs(l: SandboxLimits): string[] {
  const n = (x: number) => String(Math.max(1, Math.floor(x)))
  return [
    'prlimit',
    `--data=${n(l.dataBytes)}`,
    `--cpu=${n(l.cpuSeconds)}`,
    `--fsize=${n(l.fileSizeBytes)}`,
    `--nproc=${n(l.processes)}`,
    '--core=0',
    '--',
  ]
}

export function setprivArgs(uid: number): string[] {
  return [
    'setpriv',
    `--reuid=${uid}`,
    `--regid=${uid}`,
    '--clear-groups',
    '--inh-caps=-all',
    '--bounding-set=-all',
    '--no-new-privs',
    '--',
  ]
}

/**
 * The device nodes a task holding these GPUs gets: `/dev/nvidia<N>` for each
 * assigned index, and the driver's shared nodes, each only if it exists.
 */
export function gpuDevices(gpus: readonly number[], exists: (path: string) => boolean): string[] {
  if (gpus.length === 0) return []
  const own = [...new Set(gpus)]
    .filter((g) => Number.isInteger(g) && g >= 0)
    .sort((a, b) => a - b)
    .map((g) => `/dev/nvidia${g}`)
  return [...own, ...GPU_SHARED_DEVICES].filter((p) => exists(p))
}

export interface EnvOptions {
  /** The job's own variables (commands). */
  env?: Record<string, string>
  /** GPU indexes assigned (CUDA_VISIBLE_DEVICES), or undefined for a task that asked for none. */
  gpus?: readonly number[]
  lang?: string
  tmpDir?: string
}

/** A scrubbed environment: PATH, LANG, HOME, TMPDIR, then the job's own variables and the CUDA ones; nothing of the daemon's. */
export function sandboxEnv(o: EnvOptions = {}): Record<string, string> {
  const env: Record<string, string> = {
    PATH: SANDBOX_PATH,
    LANG: o.lang !== undefined && /^[A-Za-z0-9_.@-]{1,64}$/.test(o.lang) ? o.lang : 'C.UTF-8',
    HOME: SANDBOX_WORK,
    TMPDIR: o.tmpDir ?? '/tmp',
    // The job's own variables may override those (they only matter inside).
    ...(o.env ?? {}),
  }
  if (o.gpus !== undefined) {
    env.CUDA_VISIBLE_DEVICES = o.gpus.join(',')
    env.CUDA_DEVICE_ORDER = 'PCI_BUS_ID'
  }
  return env
}
