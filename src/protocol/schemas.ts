/**
 * Checks for the scheduler's vocabulary as it travels on the wire (batches,
 * results, task keys), shared by the steal, result and lease codecs.
 * Limits here are per field; each protocol also caps the whole message.
 */

import {
  type Accepts,
  type Access,
  type Batch,
  type CopyKey,
  type CustodyCredentials,
  type FileEntry,
  type GpuInfo,
  type HeldKey,
  type JobSpec,
  MAX_COMMAND_OUTPUT_BYTES,
  MAX_COPY,
  MAX_CUSTODY_LINKS,
  type OutputFile,
  type OutputSpec,
  type Resources,
  type SchedulerAdvert,
  type TaskDescriptor,
  type TaskKey,
  type TaskOutcome,
  type TaskResult,
  type WorkSpec,
} from '../domain/types.ts'
import { isValidPeerId } from './peer-id.ts'
import {
  arr,
  bool,
  bytes,
  type Check,
  fail,
  literal,
  num,
  obj,
  oneOf,
  optional,
  record,
  refine,
  str,
  uint,
  variant,
} from './validate.ts'

const KiB = 1024
const MiB = 1024 * KiB

/** Bytes of one task input, one dependency value, or one inline result value. */
export const MAX_VALUE_BYTES = 8 * MiB
export const MAX_ID_LENGTH = 128
export const MAX_PEER_ID_LENGTH = 128
export const MAX_DEPS = 10_000
export const MAX_BATCH_TASKS = 65_536
export const MAX_BATCH_JOBS = 1024
export const MAX_TASK_KEYS = 65_536
export const MAX_RESULTS = 65_536
export const MAX_ERROR_TEXT = 64 * KiB
export const MAX_ARGV = 4096
export const MAX_ENV = 1024
export const MAX_GPUS = 64
export const MAX_READY_CLASSES = 64

/** Job ids and similar opaque identifiers. */
export const id: Check<string> = str({ min: 1, max: MAX_ID_LENGTH })

const peerKeyString = str({ min: 1, max: MAX_PEER_ID_LENGTH })
/** True if `s` is a peer ID in its canonical string form (what the scheduler compares). */
export function isPeerIdString(s: string): boolean {
  return isValidPeerId(s)
}

/** A peer ID string (job owners, who ran a task, custody holders): refused at decode if it does not parse. */
export const peerKey: Check<string> = (value, path) => {
  const s = peerKeyString(value, path)
  if (!isPeerIdString(s)) fail(path, 'not a peer ID')
  return s
}
/** Durations and costs: non-negative, fractional allowed, under about 30 years. */
export const millis: Check<number> = num(0, 1e12)

export const resources: Check<Resources> = obj({
  cpu: num(0, 1e6),
  gpu: uint(1024),
  memoryMB: uint(),
})

const work: Check<WorkSpec> = variant<WorkSpec>('kind', {
  function: obj({
    kind: literal('function'),
    bundle: str({ min: 1, max: 256 }),
    exportName: str({ min: 1, max: 256 }),
    call: optional(oneOf('map', 'apply')),
  }),
  command: obj({
    kind: literal('command'),
    argv: arr(str({ max: 128 * KiB }), MAX_ARGV),
    env: record(str({ min: 1, max: 1024 }), str({ max: 128 * KiB }), MAX_ENV),
    // Clamped, not refused: a job stored before this limit, or from an older peer, still travels
    // (a refused spec fails its whole message: every steal of its tasks); no node keeps more anyway.
    stdoutMaxBytes: (value, path) => Math.min(uint()(value, path), MAX_COMMAND_OUTPUT_BYTES),
  }),
  noop: obj({ kind: literal('noop') }),
})

/** Files in one job's manifest, outputs globs, output files of one task. */
export const MAX_JOB_FILES = 10_000
export const MAX_OUTPUT_GLOBS = 64
export const MAX_TASK_OUTPUTS = 10_000
export const MAX_FILE_PATH = 1024
const sha256Hex = str({ min: 64, max: 64, pattern: /^[0-9a-f]{64}$/ })
/** A relative path with forward slashes: no empty, `.` or `..` segment, no leading slash. */
const relPath: Check<string> = (value, path) => {
  const s = str({ min: 1, max: MAX_FILE_PATH })(value, path)
  if (s.includes('\0') || s.split('/').some((seg) => seg === '' || seg === '.' || seg === '..'))
    fail(path, 'not a plain relative path')
  return s
}

export const fileEntry: Check<FileEntry> = obj({
  path: relPath,
  size: uint(),
  sha256: sha256Hex,
  mode: uint(0o7777),
  chunks: optional(sha256Hex),
})

export const outputSpec: Check<OutputSpec> = obj({
  globs: arr(str({ min: 1, max: MAX_FILE_PATH }), MAX_OUTPUT_GLOBS),
  maxBytes: uint(),
  perTask: optional(bool()),
})

export const outputFile: Check<OutputFile> = obj({ name: relPath, size: uint(), sha256: sha256Hex })

export const jobSpec: Check<JobSpec> = obj({
  id,
  owner: peerKey,
  work,
  resources,
  timeoutMs: uint(),
  maxAttempts: uint(1_000_000),
  retries: uint(1_000_000),
  priority: optional(num(-1e9, 1e9)),
  files: optional(arr(fileEntry, MAX_JOB_FILES)),
  outputs: optional(outputSpec),
})

/** The owner's custody tag (16 bytes, see src/node/custody-credentials.ts) and a link's Ed25519 signature. */
export const CUSTODY_TAG_BYTES = 16
export const CUSTODY_SIG_BYTES = 64
export { MAX_CUSTODY_LINKS }

function exactBytes(n: number): Check<Uint8Array> {
  const check = bytes(n)
  return (value, path) => {
    const b = check(value, path)
    if (b.byteLength !== n) fail(path, `expected ${n} bytes`)
    return b
  }
}

export const custodyCredentials: Check<CustodyCredentials> = obj({
  first: peerKey,
  tag: exactBytes(CUSTODY_TAG_BYTES),
  links: arr(obj({ to: peerKey, sig: exactBytes(CUSTODY_SIG_BYTES) }), MAX_CUSTODY_LINKS),
})

export const taskDescriptor: Check<TaskDescriptor> = obj({
  job: id,
  index: uint(),
  attempt: uint(),
  input: bytes(MAX_VALUE_BYTES),
  depValues: arr(bytes(MAX_VALUE_BYTES), MAX_DEPS),
  costHintMs: optional(millis),
  custody: optional(custodyCredentials),
})

/** A batch: every task's job is among `jobs`, and no job appears twice. */
export const batch: Check<Batch> = refine(
  obj({
    jobs: arr(jobSpec, MAX_BATCH_JOBS),
    tasks: arr(taskDescriptor, MAX_BATCH_TASKS),
  }),
  (b, path) => {
    const ids = new Set<string>()
    b.jobs.forEach((job, i) => {
      if (ids.has(job.id)) fail(`${path}.jobs[${i}].id`, 'duplicate job')
      ids.add(job.id)
    })
    b.tasks.forEach((task, i) => {
      if (!ids.has(task.job)) fail(`${path}.tasks[${i}].job`, 'job not in batch.jobs')
    })
  },
)

export const taskKey: Check<TaskKey> = obj({ job: id, index: uint(), attempt: uint() })
export const taskKeys: Check<TaskKey[]> = arr(taskKey, MAX_TASK_KEYS)
export { MAX_COPY }

/** Which copy of an attempt (CopyKey): its position in the custody chain, 1…MAX_COPY. */
export const copyNumber: Check<number> = (value, path) => {
  const n = uint(MAX_COPY)(value, path)
  if (n < 1) fail(path, `expected an integer in [1, ${MAX_COPY}]`)
  return n
}

/** A task key naming one copy (a lease answer's drop). */
export const copyKey: Check<CopyKey & { copy: number }> = obj({
  job: id,
  index: uint(),
  attempt: uint(),
  copy: copyNumber,
})
export const copyKeys: Check<Array<CopyKey & { copy: number }>> = arr(copyKey, MAX_TASK_KEYS)

/**
 * Lease holdings: task keys naming the copy held, each with the credentials of
 * that attempt when its holder has some; the copy must be the one they prove
 * (links + 1), so the owner can trust it wherever it skips checking them.
 */
export const heldKeys: Check<HeldKey[]> = arr(
  refine(
    obj({ job: id, index: uint(), attempt: uint(), copy: copyNumber, custody: optional(custodyCredentials) }),
    (k, path) => {
      if (k.custody !== undefined && k.copy !== k.custody.links.length + 1)
        fail(`${path}.copy`, `expected ${k.custody.links.length + 1} (its credentials' links + 1)`)
    },
  ),
  MAX_TASK_KEYS,
)

const errorText = str({ max: MAX_ERROR_TEXT })

export const taskOutcome: Check<TaskOutcome> = variant<TaskOutcome>('status', {
  ok: obj({
    status: literal('ok'),
    value: bytes(MAX_VALUE_BYTES),
    durationMs: millis,
    outputs: optional(arr(outputFile, MAX_TASK_OUTPUTS)),
  }),
  threw: obj({ status: literal('threw'), error: errorText, stack: optional(errorText), durationMs: millis }),
  timeout: obj({ status: literal('timeout'), error: errorText, durationMs: millis }),
  crashed: obj({ status: literal('crashed'), error: errorText, durationMs: millis }),
  rejected: obj({ status: literal('rejected'), error: errorText, durationMs: millis }),
  returned: obj({ status: literal('returned'), error: errorText, durationMs: millis }),
})

export const taskResult: Check<TaskResult> = obj({
  job: id,
  index: uint(),
  attempt: uint(),
  ranOn: peerKey,
  outcome: taskOutcome,
  custody: optional(custodyCredentials),
})

export const gpuInfo: Check<GpuInfo> = obj({
  index: uint(1024),
  uuid: optional(str({ max: 128 })),
  name: str({ max: 256 }),
  memoryTotalMB: optional(uint()),
  memoryFreeMB: optional(uint()),
  utilizationPct: optional(num(0, 100)),
})

/** Owners one kind of work may come from, as a node's policy lists them (more: it says `all: false` with the first ones). */
export const MAX_ACCESS_PEERS = 32
const access: Check<Access> = obj({ all: bool(), peers: arr(peerKey, MAX_ACCESS_PEERS) })

/** What a node accepts from others (version 1; a node that does not know a version rejects it). */
export const acceptsSchema: Check<Accepts> = obj({
  v: literal(1),
  foreign: bool(),
  reason: str({ max: 256 }),
  function: access,
  command: access,
  gpu: access,
})

export const schedulerAdvert: Check<SchedulerAdvert> = obj({
  slots: uint(),
  freeSlots: uint(),
  memoryMB: uint(),
  freeMemoryMB: uint(),
  gpus: uint(),
  freeGpus: uint(),
  ready: arr(obj({ resources, count: uint() }), MAX_READY_CLASSES),
  running: uint(),
  meanTaskMs: millis,
  accepts: optional(acceptsSchema),
})
