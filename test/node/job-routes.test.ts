import { pino } from 'pino'
import { afterEach, describe, expect, it } from 'vitest'
import { encodeValue } from '../../src/executor/values.ts'
import { ApiServer } from '../../src/node/api.ts'
import type { Driver, SubmitRequest } from '../../src/node/driver.ts'
import { MAX_JOB_NAME_LENGTH, registerJobRoutes } from '../../src/node/job-routes.ts'
import { JobExistsError } from '../../src/node/store.ts'
import { MAX_ARGV, MAX_DEPS, MAX_VALUE_BYTES } from '../../src/protocol/schemas.ts'
import { STEAL_MAX_MESSAGE_BYTES, stealRequestCodec } from '../../src/protocol/steal/codec.ts'

const TOKEN = 'test-token'
const servers: ApiServer[] = []
afterEach(async () => {
  for (const s of servers.splice(0)) await s.close()
})

/** A real ApiServer on loopback with the job routes over a driver that only records submissions. */
async function api() {
  const submitted: SubmitRequest[] = []
  const ids = new Set<string>()
  const driver = {
    hub: {},
    // Job files (src/node/files): no blob store here, and no task input over 1 MiB to turn into a blob.
    blobs: undefined,
    async bigInputs() {},
    submit(req: SubmitRequest, o: { id?: string } = {}) {
      // As the store does: a client-chosen id it holds already is refused before anything runs.
      if (o.id !== undefined && ids.has(o.id)) throw new JobExistsError(o.id)
      if (o.id !== undefined) ids.add(o.id)
      submitted.push(req)
      return { id: o.id ?? 'job-x', total: req.tasks.length }
    },
  } as unknown as Driver
  const server = new ApiServer(TOKEN, pino({ level: 'silent' }))
  registerJobRoutes(server, driver)
  const base = await server.listen('127.0.0.1', 0)
  servers.push(server)
  const post = async (bytes: Uint8Array) => {
    const res = await fetch(`${base}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/octet-stream' },
      body: Buffer.from(bytes),
    })
    return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } }
  }
  const submit = (job: Record<string, unknown>) => post(encodeValue(job))
  const get = async (path: string) => {
    const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } })
    return { status: res.status, body: (await res.json()) as { error?: { code: string; message: string } } }
  }
  return { submit, post, get, submitted }
}

const noop = { kind: 'noop' }
const task = (bytes = 4, deps: number[] = []) => ({ input: new Uint8Array(bytes), deps })

describe('POST /v1/jobs applies the wire limits at submit', () => {
  it('refuses a body over 64 MiB without reading it all, and keeps serving', async () => {
    const a = await api()
    const huge = new Uint8Array(64 * 1024 * 1024 + 1)
    // The server answers 413 and hangs up while the body is still arriving: the client sees one or the other.
    const r = await a
      .post(huge)
      .catch((err: Error) => ({ status: 0, body: { error: { code: 'reset', message: err.message } } }))
    expect([413, 0]).toContain(r.status)
    if (r.status === 413) expect(r.body.error?.code).toBe('GN_TOO_LARGE')
    expect(a.submitted).toHaveLength(0)
    const ok = await a.submit({ name: 'after', work: noop, tasks: [task()] })
    expect(ok.status).toBe(200)
  })

  it('answers 409 for a client-chosen id in use, and takes the same job under a new id', async () => {
    const a = await api()
    expect((await a.submit({ id: 'mine-1', work: noop, tasks: [task()] })).status).toBe(200)
    const again = await a.submit({ id: 'mine-1', work: noop, tasks: [task()] })
    expect(again.status).toBe(409)
    expect(again.body.error).toEqual({
      code: 'GN_BAD_SUBMIT',
      message: 'a job mine-1 exists already on this node',
    })
    expect((await a.submit({ id: 'mine-2', work: noop, tasks: [task()] })).status).toBe(200)
    expect(a.submitted).toHaveLength(2)
  })

  it('accepts a job that fits', async () => {
    const a = await api()
    const r = await a.submit({ name: 'ok', work: noop, tasks: [task(), task(MAX_VALUE_BYTES)] })
    expect(r.status).toBe(200)
    expect(a.submitted).toHaveLength(1)
  })

  it('refuses an input over MAX_VALUE_BYTES with a 413 naming the task and the limit', async () => {
    const a = await api()
    const r = await a.submit({ work: noop, tasks: [task(), task(), task(MAX_VALUE_BYTES + 1)] })
    expect(r.status).toBe(413)
    expect(r.body.error?.code).toBe('GN_TOO_LARGE')
    expect(r.body.error?.message).toMatch(/^task 2: input is 8388609 bytes/)
    expect(r.body.error?.message).toContain(`${MAX_VALUE_BYTES} bytes (8 MiB)`)
    expect(a.submitted).toHaveLength(0)
  })

  it('refuses argv, env and resources the wire would refuse', async () => {
    const a = await api()
    const cases: Array<[Record<string, unknown>, RegExp]> = [
      [
        { kind: 'command', argv: Array.from({ length: MAX_ARGV + 1 }, () => 'x') },
        /wire's limits: job\.work\.argv/,
      ],
      [{ kind: 'command', argv: ['echo', 'x'.repeat(200 * 1024)] }, /job\.work\.argv\[1\]/],
      [{ kind: 'command', argv: ['echo'], env: { K: 'v'.repeat(200 * 1024) } }, /job\.work\.env/],
      [{ kind: 'command', argv: ['echo'], env: { ['k'.repeat(2000)]: 'v' } }, /job\.work\.env/],
      [{ kind: 'function', bundle: 'a'.repeat(64), exportName: 'e'.repeat(300) }, /job\.work\.exportName/],
      // Each node holds a command's output in memory: a bigger cap is refused, not trusted.
      [
        { kind: 'command', argv: ['echo'], stdoutMaxBytes: 2 ** 31 },
        /stdoutMaxBytes 2147483648: at most 3145728/,
      ],
    ]
    for (const [work, message] of cases) {
      const r = await a.submit({ work, tasks: [task()] })
      expect(r.status, String(message)).toBe(400)
      expect(r.body.error?.code).toBe('GN_BAD_SUBMIT')
      expect(r.body.error?.message).toMatch(message)
    }
    const gpus = await a.submit({ work: noop, resources: { gpu: 5000 }, tasks: [task()] })
    expect(gpus.body.error?.message).toMatch(/job\.resources\.gpu/)
    const attempts = await a.submit({ work: noop, maxAttempts: 2_000_000, tasks: [task()] })
    expect(attempts.body.error?.message).toMatch(/job\.maxAttempts/)
    expect(a.submitted).toHaveLength(0)
  })

  it('refuses a job whose description and largest input cannot travel in one message', async () => {
    const a = await api()
    // 70 arguments of 120 KiB: each allowed, 8.2 MiB together, plus an 8 MiB input: over 16 MiB.
    const argv = ['echo', ...Array.from({ length: 70 }, () => 'y'.repeat(120 * 1024))]
    const r = await a.submit({ work: { kind: 'command', argv }, tasks: [task(), task(MAX_VALUE_BYTES)] })
    expect(r.status).toBe(413)
    expect(r.body.error?.message).toMatch(
      /^task 1: the job's description and this task's input together exceed/,
    )
  })

  it('a body under half a wire message fits one push of its job and largest task (the trial encode it skips)', () => {
    // The worst cases for CBOR against V8's serialization: Latin-1 letters above 0x7f (1 byte
    // there, 2 in UTF-8), two-byte strings (2 bytes per unit there, up to 3 here), small integers.
    const owner = '12D3KooWEGVRPZnhYFNYSjZHXpwyJVqonE9VFQneEtNsKBqYZ1of'
    const latin = 'é'.repeat(100 * 1024)
    const wide = '€'.repeat(60 * 1024)
    const cmd = (argv: string[], env: Record<string, string> = {}) => ({
      kind: 'command',
      argv,
      env,
      stdoutMaxBytes: 1 << 20,
    })
    const jobs: Array<{ work: Record<string, unknown>; input: Uint8Array }> = [
      {
        work: cmd(['echo', ...Array.from({ length: 40 }, () => latin)]),
        input: new Uint8Array(4),
      },
      {
        work: cmd(['echo'], Object.fromEntries(Array.from({ length: 60 }, (_, i) => [`K${i}`, wide]))),
        input: new Uint8Array(4),
      },
      {
        work: cmd(Array.from({ length: MAX_ARGV }, () => 'é')),
        input: new Uint8Array(1 << 20),
      },
    ]
    for (const { work, input } of jobs) {
      const req = {
        work,
        resources: { cpu: 1, gpu: 0, memoryMB: 0 },
        timeoutMs: 0,
        maxAttempts: 3,
        retries: 0,
      }
      const body = encodeValue({ ...req, name: 'x', tasks: [{ input, deps: [] }] }).byteLength
      const push = stealRequestCodec.encode({
        t: 'push',
        batch: {
          jobs: [{ ...req, id: 'j'.repeat(64), owner } as never],
          tasks: [{ job: 'j'.repeat(64), index: 0, attempt: 1, input, depValues: [] }],
        },
      }).byteLength
      expect(push).toBeLessThanOrEqual(2 * body + 64 * 1024)
    }
    expect(STEAL_MAX_MESSAGE_BYTES).toBe(16 * 1024 * 1024)
  })

  it('refuses long names and too many dependencies; takes an empty job', async () => {
    const a = await api()
    const long = await a.submit({ name: 'n'.repeat(MAX_JOB_NAME_LENGTH + 1), work: noop, tasks: [task()] })
    expect(long.status).toBe(400)
    expect(long.body.error?.message).toMatch(/at most 200/)
    const deps = Array.from({ length: MAX_DEPS + 1 }, (_, i) => i)
    const tasks = [...deps.map(() => task()), task(4, deps)]
    const many = await a.submit({ work: noop, tasks })
    expect(many.status).toBe(400)
    expect(many.body.error?.message).toMatch(
      new RegExp(`^task ${MAX_DEPS + 1}: ${MAX_DEPS + 1} dependencies`),
    )
    expect(a.submitted).toHaveLength(0)
    const empty = await a.submit({ work: noop, tasks: [] })
    expect(empty.status).toBe(200)
    expect(a.submitted).toHaveLength(1)
    expect(a.submitted[0].tasks).toEqual([])
  })

  it('refuses a crafted body fast instead of stalling the daemon', async () => {
    const a = await api()
    // Not made by encodeValue: a sparse array of length 2^32-2 as the whole body (15 bytes).
    const crafted = new Uint8Array([
      0xff, 0x0f, 0x61, 0xfe, 0xff, 0xff, 0xff, 0x0f, 0x40, 0x00, 0xfe, 0xff, 0xff, 0xff, 0x0f,
    ])
    const start = performance.now()
    const r = await a.post(crafted)
    expect(r.status).toBe(400)
    expect(r.body.error?.message).toMatch(/cannot decode the job/)
    expect(performance.now() - start).toBeLessThan(1000)
  })

  it('answers a malformed path escape with a 400, not a 500', async () => {
    const a = await api()
    const r = await a.get('/v1/jobs/%E0%A4%A/results')
    expect(r.status).toBe(400)
    expect(r.body.error?.code).toBe('GN_BAD_PATH')
  })
})
