/**
 * Generators for the wire fuzzers: structurally valid messages mirroring the
 * schemas in src/protocol (so they reach the handlers), and the ways a hostile
 * peer bends them: one field mutated, random CBOR values, random bytes,
 * truncations and bit flips of valid encodings, oversized frames.
 *
 * Plain module (no vitest): bench/fuzz.ts runs the same generators.
 */
import { generateKeyPairFromSeed } from '@libp2p/crypto/keys'
import { peerIdFromPrivateKey } from '@libp2p/peer-id'
import { encode as cborEncode } from 'cborg'
import fc from 'fast-check'
import { MAX_COMMAND_OUTPUT_BYTES } from '../../src/domain/types.ts'

/** A wire message as a plain object, `v` and `t` included, before encoding. */
export type Wire = Record<string, unknown>

/** How a fuzz input was made (for counts and failure reports). */
export type Kind = 'valid' | 'mutated' | 'cbor' | 'bytes' | 'truncated' | 'flipped'
export const KINDS: readonly Kind[] = ['valid', 'mutated', 'cbor', 'bytes', 'truncated', 'flipped']

export interface Sample {
  kind: Kind
  bytes: Uint8Array
}

// ---------------------------------------------------------------------------
// Peers: real peer IDs (deterministic keys), so messages pass the peer-ID checks.

async function peerFromSeed(n: number): Promise<string> {
  const seed = new Uint8Array(32).fill(n)
  return peerIdFromPrivateKey(await generateKeyPairFromSeed('Ed25519', seed)).toString()
}

/** Eight valid peer IDs; PEERS[0] is the owner in the scheduler fuzz. */
export const PEERS: readonly string[] = await Promise.all(
  Array.from({ length: 8 }, (_, i) => peerFromSeed(i + 1)),
)

/** Strings that look like peer IDs and are not (the `"x"` owner that once killed a daemon, and kin). */
export const BOGUS_PEERS: readonly string[] = [
  'x',
  '',
  '12D3KooW',
  `${PEERS[0].slice(0, -1)}z`,
  PEERS[0].toLowerCase(),
  `${PEERS[0]}A`,
  'QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N',
  'bafzaajaiaejcaxykhmgsz2mhscluhm6bkliibattya2l2lld7ocdcxiy3xmfkn6v',
  '/ip4/127.0.0.1/tcp/1',
  'z'.repeat(129),
]

export const peer = fc.constantFrom(...PEERS)

// ---------------------------------------------------------------------------
// Field arbitraries (mirroring src/protocol/schemas.ts)

const KiB = 1024
export const smallBytes = (max = 64) => fc.uint8Array({ maxLength: max })
export const id = fc.oneof(
  { weight: 8, arbitrary: fc.constantFrom('job-1', 'job-2', 'job-3') },
  { weight: 2, arbitrary: fc.string({ minLength: 1, maxLength: 16 }) },
  { weight: 1, arbitrary: fc.constant('j'.repeat(128)) },
)
export const uint = fc.oneof(
  { weight: 6, arbitrary: fc.nat(16) },
  { weight: 2, arbitrary: fc.nat() },
  { weight: 1, arbitrary: fc.constantFrom(0, 2 ** 32, Number.MAX_SAFE_INTEGER) },
)
const fraction = (min: number, max: number) =>
  fc.oneof(
    fc.double({ min, max, noNaN: true, noDefaultInfinity: true }),
    fc.integer({ min: Math.ceil(min), max: Math.min(max, 2 ** 31) }),
  )
const millis = fraction(0, 1e12)
const resources = fc.record({ cpu: fraction(0, 1e6), gpu: fc.nat(1024), memoryMB: uint })

const work = fc.oneof(
  fc.record(
    {
      kind: fc.constant('function'),
      bundle: fc.string({ minLength: 1, maxLength: 64 }),
      exportName: fc.string({ minLength: 1, maxLength: 16 }),
      call: fc.constantFrom('map', 'apply'),
    },
    { requiredKeys: ['kind', 'bundle', 'exportName'] },
  ),
  fc.record({
    kind: fc.constant('command'),
    argv: fc.array(fc.string({ maxLength: 16 }), { maxLength: 4 }),
    env: fc.dictionary(fc.string({ minLength: 1, maxLength: 8 }), fc.string({ maxLength: 8 }), {
      maxKeys: 3,
    }),
    stdoutMaxBytes: fc.oneof(fc.nat(16), fc.constantFrom(0, 1 << 20, MAX_COMMAND_OUTPUT_BYTES)),
  }),
  fc.record({ kind: fc.constant('noop') }),
)

export const jobSpec = (jobId: fc.Arbitrary<string>) =>
  fc.record(
    {
      id: jobId,
      owner: peer,
      work,
      resources,
      timeoutMs: uint,
      maxAttempts: fc.nat(1_000_000),
      retries: fc.nat(1_000_000),
      priority: fraction(-1e9, 1e9),
    },
    { requiredKeys: ['id', 'owner', 'work', 'resources', 'timeoutMs', 'maxAttempts', 'retries'] },
  )

const exact = (n: number) => fc.uint8Array({ minLength: n, maxLength: n })
export const custody = fc.record({
  first: peer,
  tag: exact(16),
  links: fc.array(fc.record({ to: peer, sig: exact(64) }), { maxLength: 3 }),
})

const taskFields = (job: fc.Arbitrary<string>) => ({
  job,
  index: uint,
  attempt: uint,
  input: smallBytes(),
  depValues: fc.array(smallBytes(8), { maxLength: 3 }),
  costHintMs: millis,
  custody,
})
const TASK_REQUIRED = ['job', 'index', 'attempt', 'input', 'depValues'] as const

/** A batch whose tasks all name one of its jobs (job ids unique). */
export const batch = fc.uniqueArray(jobSpec(id), { maxLength: 3, selector: (j) => j.id }).chain((jobs) =>
  fc.record({
    jobs: fc.constant(jobs),
    tasks:
      jobs.length === 0
        ? fc.constant([])
        : fc.array(
            fc.record(taskFields(fc.constantFrom(...jobs.map((j) => j.id))), {
              requiredKeys: [...TASK_REQUIRED],
            }),
            { maxLength: 4 },
          ),
  }),
)

const errorText = fc.string({ maxLength: 32 })
export const outcome = fc.oneof(
  fc.record({ status: fc.constant('ok'), value: smallBytes(), durationMs: millis }),
  fc.record(
    { status: fc.constant('threw'), error: errorText, stack: errorText, durationMs: millis },
    { requiredKeys: ['status', 'error', 'durationMs'] },
  ),
  fc.record({
    status: fc.constantFrom('timeout', 'crashed', 'rejected'),
    error: errorText,
    durationMs: millis,
  }),
)

export const taskResult = (job: fc.Arbitrary<string>, index = uint, attempt = uint) =>
  fc.record(
    { job, index, attempt, ranOn: peer, outcome, custody },
    { requiredKeys: ['job', 'index', 'attempt', 'ranOn', 'outcome'] },
  )

/** Which copy of an attempt a lease names: 1…17, its credentials' links + 1 when it carries them. */
export const copy = fc.integer({ min: 1, max: 17 })

export const heldKey = (job: fc.Arbitrary<string>, index = uint, attempt = uint) =>
  fc
    .record({ job, index, attempt, custody }, { requiredKeys: ['job', 'index', 'attempt'] })
    .chain((k) =>
      k.custody === undefined
        ? copy.map((c) => ({ ...k, copy: c }))
        : fc.constant({ ...k, copy: k.custody.links.length + 1 }),
    )

const gpu = fc.record(
  {
    index: fc.nat(1024),
    uuid: fc.string({ maxLength: 40 }),
    name: fc.string({ maxLength: 32 }),
    memoryTotalMB: uint,
    memoryFreeMB: uint,
    utilizationPct: fraction(0, 100),
    free: fc.boolean(),
  },
  { requiredKeys: ['index', 'name', 'free'] },
)

const schedulerAdvert = fc.record({
  slots: uint,
  freeSlots: uint,
  memoryMB: uint,
  freeMemoryMB: uint,
  gpus: uint,
  freeGpus: uint,
  ready: fc.array(fc.record({ resources, count: uint }), { maxLength: 4 }),
  running: uint,
  meanTaskMs: millis,
})

const hex64 = fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b).toString('hex'))

const msg = (t: string, body: fc.Arbitrary<Record<string, unknown>>) =>
  body.map((b): Wire => ({ v: 1, t, ...b }))

// ---------------------------------------------------------------------------
// Valid requests per protocol

export const validWire = {
  steal: fc.oneof(
    msg('steal', fc.record({ free: resources, max: fc.nat(65_536) })),
    msg('push', fc.record({ batch })),
  ),
  result: msg('results', fc.record({ results: fc.array(taskResult(id), { maxLength: 4 }) })),
  lease: fc.oneof(
    msg('lease', fc.record({ holdings: fc.array(heldKey(id), { maxLength: 6 }) })),
    msg('cancel', fc.record({ job: id })),
  ),
  blob: msg('blob-get', fc.record({ hash: hex64 })),
  advert: msg(
    'advert',
    fc.record(
      {
        mesh: fc.constantFrom('default', 'lab'),
        peerId: peer,
        seq: uint,
        sentAtMs: uint,
        version: fc.string({ maxLength: 16 }),
        cpus: fc.nat(1 << 20),
        load1: fraction(0, 1e6),
        memoryTotalMB: uint,
        memoryFreeMB: uint,
        gpus: fc.array(gpu, { maxLength: 3 }),
        sched: schedulerAdvert,
        flows: fc.array(
          fc.record({
            peer,
            kind: fc.constantFrom('steal', 'push'),
            out: fc.boolean(),
            tasks: fc.nat(1 << 30),
            agoMs: fc.nat(60_000),
          }),
          { maxLength: 16 },
        ),
      },
      {
        requiredKeys: [
          'mesh',
          'peerId',
          'seq',
          'sentAtMs',
          'version',
          'cpus',
          'load1',
          'memoryTotalMB',
          'memoryFreeMB',
          'gpus',
          'sched',
        ],
      },
    ),
  ),
  member: fc.oneof(
    msg('hello', fc.record({ cert: smallBytes(300) })),
    msg('redeem', fc.record({ secret: smallBytes(32) })),
    msg('renew', fc.record({})),
  ),
} satisfies Record<string, fc.Arbitrary<Wire>>

export type ProtocolName = keyof typeof validWire

// ---------------------------------------------------------------------------
// Hostile values

/** A value of the wrong type, size or sign for whatever field it lands in. */
export const badValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom<unknown>(
    null,
    true,
    false,
    -1,
    -0.5,
    1.5,
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    2 ** 53,
    Number.MAX_VALUE,
    -(2 ** 63),
    2n ** 64n,
    -(2n ** 64n),
    undefined,
    '',
    'x'.repeat(129),
    'y'.repeat(64 * KiB + 1),
    'steal',
    new Uint8Array(0),
    new Uint8Array(17),
    new Uint8Array(65),
    [],
    [[[[[[[[[[]]]]]]]]]],
    {},
    { v: 1, t: 'steal' },
    new Map<unknown, unknown>([[1, 2]]),
    new Map<unknown, unknown>([[new Uint8Array(1), 'k']]),
    { constructor: 1, toString: 'x', hasOwnProperty: null },
  ),
  fc.constantFrom<unknown>(...BOGUS_PEERS),
  fc.integer({ min: -(2 ** 31), max: -1 }),
  fc.double(),
  fc.string({ maxLength: 8 }),
  fc.uint8Array({ maxLength: 8 }),
)

/** Every [container, key] in a wire object, deepest included (`v` and `t` too). */
function slots(root: unknown): Array<[Record<string, unknown> | unknown[], string | number]> {
  const out: Array<[Record<string, unknown> | unknown[], string | number]> = []
  const walk = (node: unknown) => {
    if (Array.isArray(node)) {
      node.forEach((child, i) => {
        out.push([node, i])
        walk(child)
      })
    } else if (node !== null && typeof node === 'object' && !(node instanceof Uint8Array)) {
      for (const [k, child] of Object.entries(node)) {
        out.push([node as Record<string, unknown>, k])
        walk(child)
      }
    }
  }
  walk(root)
  return out
}

type Edit = { op: 'set'; value: unknown } | { op: 'delete' } | { op: 'add'; key: string; value: unknown }

const edit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 6, arbitrary: badValue.map((value): Edit => ({ op: 'set', value })) },
  { weight: 1, arbitrary: fc.constant<Edit>({ op: 'delete' }) },
  {
    weight: 1,
    arbitrary: fc
      .tuple(fc.constantFrom('extra', '__proto__', 'constructor', 'custody', 'path'), badValue)
      .map(([key, value]): Edit => ({ op: 'add', key, value })),
  },
)

function clone(value: unknown): unknown {
  if (value instanceof Uint8Array) return value.slice()
  if (Array.isArray(value)) return value.map(clone)
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {}
    for (const [k, v] of Object.entries(value)) out[k] = clone(v)
    return out
  }
  return value
}

/** A valid message with one field changed, removed or added. */
export function mutated(valid: fc.Arbitrary<Wire>): fc.Arbitrary<Wire> {
  return fc.tuple(valid, fc.nat(), edit).map(([wire, pick, e]) => {
    const copy = clone(wire) as Wire
    const all = slots(copy)
    const [container, key] = all[pick % all.length]
    if (e.op === 'set') (container as Record<string | number, unknown>)[key] = e.value
    else if (e.op === 'delete') {
      if (Array.isArray(container)) container.splice(key as number, 1)
      else delete container[key as string]
    } else {
      const target = (container as Record<string | number, unknown>)[key]
      if (target !== null && typeof target === 'object' && !Array.isArray(target)) {
        Object.defineProperty(target, e.key, { value: e.value, enumerable: true, writable: true })
      } else (container as Record<string | number, unknown>)[key] = { [e.key]: e.value }
    }
    return copy
  })
}

/** Any CBOR-encodable value: scalars, bytes, arrays, string-keyed and odd-keyed maps, tags. */
export const cborValue: fc.Arbitrary<unknown> = fc.letrec((tie) => ({
  value: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.constantFrom<unknown>(null, true, false, undefined, Number.NaN, Number.POSITIVE_INFINITY, -0),
    fc.integer(),
    fc.bigInt({ min: -(2n ** 64n) + 1n, max: 2n ** 64n - 1n }),
    fc.double(),
    fc.string({ maxLength: 20 }),
    fc.uint8Array({ maxLength: 20 }),
    fc.array(tie('value'), { maxLength: 4 }),
    fc.dictionary(fc.string({ maxLength: 6 }), tie('value'), { maxKeys: 4 }),
    fc
      .array(fc.tuple(fc.oneof(fc.integer(), fc.uint8Array({ maxLength: 3 })), tie('value')), {
        maxLength: 3,
      })
      .map((entries) => new Map<unknown, unknown>(entries)),
  ),
})).value

/** A message envelope that passes `v`/`t` but carries random fields, so the field checks see junk. */
export function envelopeJunk(types: readonly string[]): fc.Arbitrary<Wire> {
  return fc
    .tuple(fc.constantFrom(...types), fc.dictionary(fc.string({ maxLength: 10 }), cborValue, { maxKeys: 5 }))
    .map(([t, rest]) => ({ ...rest, v: 1, t }))
}

/** Encodes anything cborg can encode (it refuses some values, e.g. undefined inside maps in some modes). */
export function encodeAny(value: unknown): Uint8Array {
  try {
    // Maps keep their insertion order (no canonical sort, which also warns on odd keys).
    return cborEncode(value, { mapSorter: () => 0 })
  } catch {
    return cborEncode(null)
  }
}

export function flipBits(bytes: Uint8Array, flips: Array<[number, number]>): Uint8Array {
  const out = bytes.slice()
  if (out.byteLength === 0) return out
  for (const [at, bit] of flips) out[at % out.byteLength] ^= 1 << (bit % 8)
  return out
}

/** The mix of inputs for one protocol: valid, mutated, random CBOR, random bytes, truncations, bit flips. */
export type Weights = Record<Kind, number>

/** The default mix: as many mutated as valid messages, the rest junk of every kind. */
export const MIX: Weights = { valid: 4, mutated: 4, cbor: 2, bytes: 1, truncated: 1, flipped: 2 }
/** For streams, where only the frames that decode go on the wire (the first bad one ends it): mostly valid. */
export const STREAM_MIX: Weights = { valid: 12, mutated: 4, cbor: 1, bytes: 1, truncated: 1, flipped: 1 }

export function samples(
  valid: fc.Arbitrary<Wire>,
  types: readonly string[],
  w: Weights = MIX,
): fc.Arbitrary<Sample> {
  const validBytes = valid.map((w) => encodeAny(w))
  return fc.oneof(
    { weight: w.valid, arbitrary: validBytes.map((bytes): Sample => ({ kind: 'valid', bytes })) },
    {
      weight: w.mutated,
      arbitrary: mutated(valid).map((w): Sample => ({ kind: 'mutated', bytes: encodeAny(w) })),
    },
    {
      weight: w.cbor,
      arbitrary: fc
        .oneof(cborValue, envelopeJunk(types))
        .map((v): Sample => ({ kind: 'cbor', bytes: encodeAny(v) })),
    },
    {
      weight: w.bytes,
      arbitrary: fc.uint8Array({ maxLength: 64 }).map((bytes): Sample => ({ kind: 'bytes', bytes })),
    },
    {
      weight: w.truncated,
      arbitrary: fc
        .tuple(validBytes, fc.nat())
        .map(
          ([b, n]): Sample => ({ kind: 'truncated', bytes: b.subarray(0, n % Math.max(1, b.byteLength)) }),
        ),
    },
    {
      weight: w.flipped,
      arbitrary: fc
        .tuple(validBytes, fc.array(fc.tuple(fc.nat(), fc.nat(7)), { minLength: 1, maxLength: 3 }))
        .map(([b, flips]): Sample => ({ kind: 'flipped', bytes: flipBits(b, flips) })),
    },
  )
}

export function hex(bytes: Uint8Array, max = 512): string {
  const h = Buffer.from(bytes.subarray(0, max)).toString('hex')
  return bytes.byteLength > max ? `${h}…(${bytes.byteLength} bytes)` : h
}
