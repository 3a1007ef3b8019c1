/**
 * The API channel end to end over real loopback sockets: a real ApiServer,
 * the library's DaemonClient, and raw sockets that misbehave.
 */
import { mkdtempSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { type Socket, connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, test } from 'vitest'
import { ClientChannel } from '../../src/client/api-channel.ts'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { API_CHANNEL_PATH, API_CHANNEL_PROTOCOL, encodeRequest } from '../../src/domain/api-frames.ts'
import { ApiError, ApiServer, STREAMED } from '../../src/node/api.ts'
import { MAX_CHANNEL_IN_FLIGHT } from '../../src/node/api-channel.ts'

const TOKEN = 'k'.repeat(43)
const servers: ApiServer[] = []
const sockets: Socket[] = []

afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy()
  await Promise.all(servers.splice(0).map((s) => s.close()))
})

interface Seen {
  /** Handler signals, by the `n` query parameter, to see which were aborted. */
  signals: Map<string, AbortSignal>
  /** Requests that reached a handler. */
  count: number
}

async function server(): Promise<{ api: ApiServer; url: string; port: number; dataDir: string; seen: Seen }> {
  const api = new ApiServer(TOKEN, pino({ level: 'silent' }))
  const seen: Seen = { signals: new Map(), count: 0 }
  api.route('POST', '/v1/echo', (req) => {
    seen.count++
    return {
      body: req.body instanceof Uint8Array ? [...req.body] : req.body,
      q: req.query.get('q'),
      host: req.host,
    }
  })
  api.route('GET', '/v1/items/:id', (req) => {
    seen.count++
    if (req.params.id === 'missing') throw new ApiError(404, 'GN_NO_SUCH_ITEM', 'no such item')
    return { id: req.params.id }
  })
  // Answers after `ms` (query), or when its request is abandoned.
  api.route('GET', '/v1/slow', (req) => {
    seen.count++
    seen.signals.set(req.query.get('n') ?? '', req.signal)
    const ms = Number(req.query.get('ms') ?? 60_000)
    return new Promise((resolve, reject) => {
      const t = setTimeout(() => resolve({ n: req.query.get('n') }), ms)
      req.signal.addEventListener('abort', () => {
        clearTimeout(t)
        reject(new ApiError(499, 'GN_CLIENT_GONE', 'gone'))
      })
    })
  })
  api.httpRoute('GET', '/v1/stream', (req) => {
    req.res.end('raw')
    return STREAMED
  })
  servers.push(api)
  const url = await api.listen('127.0.0.1', 0)
  const dataDir = mkdtempSync(join(tmpdir(), 'gridnode-channel-'))
  writeFileSync(join(dataDir, 'api.json'), JSON.stringify({ url, pid: process.pid, peerId: 'x' }))
  writeFileSync(join(dataDir, 'api.token'), TOKEN)
  return { api, url, port: Number(new URL(url).port), dataDir, seen }
}

/** A raw upgrade; resolves the status line and the socket (open when 101). */
function upgrade(
  port: number,
  headers: Record<string, string>,
  path = API_CHANNEL_PATH,
): Promise<{ status: number; socket?: Socket }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, agent: false, headers })
    req.on('upgrade', (res, socket: Socket) => {
      sockets.push(socket)
      resolve({ status: res.statusCode ?? 0, socket })
    })
    req.on('response', (res) => {
      res.resume()
      resolve({ status: res.statusCode ?? 0 })
    })
    req.on('error', reject)
    req.end()
  })
}

const GOOD = { connection: 'Upgrade', upgrade: API_CHANNEL_PROTOCOL, authorization: `Bearer ${TOKEN}` }

function closed(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    if (socket.destroyed) return resolve()
    socket.once('close', () => resolve())
    socket.resume()
  })
}

describe('the API channel', () => {
  test('answers JSON routes like HTTP does: bodies, bytes, queries, errors with their codes', async () => {
    const { url, dataDir } = await server()
    const ch = await ClientChannel.open(url, `Bearer ${TOKEN}`)
    if (!ch) throw new Error('the channel was refused')
    try {
      const json = await ch.request('POST', '/v1/echo?q=a%20b', JSON.stringify({ x: [1, 'é'] }))
      expect(json.status).toBe(200)
      expect(JSON.parse(json.text)).toMatchObject({ body: { x: [1, 'é'] }, q: 'a b' })
      expect(JSON.parse(json.text).host).toMatch(/^127\.0\.0\.1:\d+$/)
      const bytes = await ch.request('POST', '/v1/echo', new Uint8Array([0, 255, 7]))
      expect(JSON.parse(bytes.text).body).toEqual([0, 255, 7])
      const missing = await ch.request('GET', '/v1/items/missing')
      expect([missing.status, JSON.parse(missing.text).error.code]).toEqual([404, 'GN_NO_SUCH_ITEM'])
      const noRoute = await ch.request('GET', '/v1/nothing')
      expect([noRoute.status, JSON.parse(noRoute.text).error.code]).toEqual([404, 'GN_NOT_FOUND'])
      const wrongMethod = await ch.request('DELETE', '/v1/echo')
      expect(wrongMethod.status).toBe(405)
      const badJson = await ch.request('POST', '/v1/echo', '{not json')
      expect([badJson.status, JSON.parse(badJson.text).error.code]).toEqual([400, 'GN_BAD_JSON'])
      const httpOnly = await ch.request('GET', '/v1/stream')
      expect([httpOnly.status, JSON.parse(httpOnly.text).error.code]).toEqual([400, 'GN_HTTP_ONLY'])
    } finally {
      ch.close()
    }
    // The library goes the same way and throws the daemon's own error codes.
    const client = DaemonClient.open({ dataDir })
    expect(await client.request('GET', '/v1/items/7')).toEqual({ id: '7' })
    await expect(client.request('GET', '/v1/items/missing')).rejects.toMatchObject({
      code: 'GN_NO_SUCH_ITEM',
    })
  })

  test('many requests share one connection and each gets its own answer, in whatever order they finish', async () => {
    const { url } = await server()
    const ch = (await ClientChannel.open(url, `Bearer ${TOKEN}`))!
    try {
      const answers = await Promise.all(
        Array.from({ length: 200 }, (_, n) => ch.request('GET', `/v1/slow?n=${n}&ms=${(n * 7) % 23}`)),
      )
      expect(answers.map((a) => JSON.parse(a.text).n)).toEqual(
        Array.from({ length: 200 }, (_, n) => String(n)),
      )
    } finally {
      ch.close()
    }
  })

  test("a client's abort cancels its request on the daemon; a closed connection cancels all of its requests", async () => {
    const { url, seen } = await server()
    const ch = (await ClientChannel.open(url, `Bearer ${TOKEN}`))!
    const ac = new AbortController()
    const gone = ch.request('GET', '/v1/slow?n=a', undefined, ac.signal)
    const other = ch.request('GET', '/v1/slow?n=b&ms=300')
    await expect.poll(() => seen.signals.has('a') && seen.signals.has('b')).toBe(true)
    ac.abort()
    await expect(gone).rejects.toMatchObject({ name: 'AbortError' })
    await expect.poll(() => seen.signals.get('a')!.aborted).toBe(true)
    expect(JSON.parse((await other).text)).toEqual({ n: 'b' })
    expect(seen.signals.get('b')!.aborted).toBe(false)

    const left = ch.request('GET', '/v1/slow?n=c')
    await expect.poll(() => seen.signals.has('c')).toBe(true)
    ch.close()
    await expect(left).rejects.toThrow(/closed/)
    await expect.poll(() => seen.signals.get('c')!.aborted).toBe(true)
  })

  test('is refused without the token, for another protocol or path; the client then speaks HTTP', async () => {
    const { port, url, dataDir } = await server()
    expect((await upgrade(port, { ...GOOD, authorization: 'Bearer wrong' })).status).toBe(401)
    expect((await upgrade(port, { ...GOOD, authorization: '' })).status).toBe(401)
    expect((await upgrade(port, { ...GOOD, upgrade: 'websocket' })).status).toBe(400)
    expect((await upgrade(port, GOOD, '/v1/status')).status).toBe(400)
    expect(await ClientChannel.open(url, 'Bearer wrong')).toBeUndefined()
    // A library client with a wrong token gets HTTP's 401, not a hang or a dropped connection.
    writeFileSync(join(dataDir, 'api.token'), 'w'.repeat(43))
    await expect(DaemonClient.open({ dataDir }).request('GET', '/v1/items/1')).rejects.toMatchObject({
      code: 'GN_UNAUTHORIZED',
    })
  })

  test('a frame that breaks the format closes that channel only; the API answers everyone else', async () => {
    const { port, url, seen } = await server()
    const attacks: Array<[string, Buffer]> = [
      ['an unknown frame kind', Buffer.from([0, 0, 0, 5, 9, 0, 0, 0, 1])],
      ['a length under the smallest frame', Buffer.from([0, 0, 0, 1, 1])],
      ['a 4 GiB length', Buffer.from([0xff, 0xff, 0xff, 0xff, 1, 2, 3])],
      ['an answer sent to the daemon', Buffer.from([0, 0, 0, 8, 2, 0, 0, 0, 1, 0, 200, 1])],
      ['a request without "METHOD /path"', Buffer.from([0, 0, 0, 9, 1, 0, 0, 0, 1, 0, 1, 71, 0])],
      ['a cancel with a tail', Buffer.from([0, 0, 0, 6, 3, 0, 0, 0, 1, 0])],
      [
        'the same id twice in flight',
        Buffer.concat([encodeRequest(5, 'GET', '/v1/slow'), encodeRequest(5, 'GET', '/v1/slow')]),
      ],
    ]
    const honest = (await ClientChannel.open(url, `Bearer ${TOKEN}`))!
    try {
      for (const [what, bytes] of attacks) {
        const { status, socket } = await upgrade(port, GOOD)
        expect(status, what).toBe(101)
        socket!.write(bytes)
        await closed(socket!)
        const a = await honest.request('GET', `/v1/items/${encodeURIComponent(what)}`)
        expect(JSON.parse(a.text), what).toEqual({ id: what })
      }
      // A frame cut short stays pending, costs nothing, and goes with its connection.
      const { socket } = await upgrade(port, GOOD)
      socket!.write(encodeRequest(1, 'GET', '/v1/items/x').subarray(0, 10))
      socket!.destroy()
      const before = seen.count
      expect(JSON.parse((await honest.request('GET', '/v1/items/y')).text)).toEqual({ id: 'y' })
      expect(seen.count).toBe(before + 1)
    } finally {
      honest.close()
    }
  })

  test(`past ${MAX_CHANNEL_IN_FLIGHT} requests in flight, the next is answered 503 at once`, async () => {
    const { url } = await server()
    const ch = (await ClientChannel.open(url, `Bearer ${TOKEN}`))!
    try {
      const waiting = Array.from({ length: MAX_CHANNEL_IN_FLIGHT }, (_, n) => {
        const p = ch.request('GET', `/v1/slow?n=${n}`)
        p.catch(() => {})
        return p
      })
      const over = await ch.request('GET', '/v1/items/1')
      expect([over.status, JSON.parse(over.text).error.code]).toEqual([503, 'GN_BUSY'])
      expect(waiting).toHaveLength(MAX_CHANNEL_IN_FLIGHT)
    } finally {
      ch.close()
    }
  })

  test("a daemon's stop closes its channels, and the library reopens one to the next daemon", async () => {
    const first = await server()
    const client = DaemonClient.open({ dataDir: first.dataDir })
    expect(await client.request('GET', '/v1/items/1')).toEqual({ id: '1' })
    const pending = client.request('GET', '/v1/slow?n=z')
    await expect.poll(() => first.seen.signals.has('z')).toBe(true)
    await first.api.close()
    servers.splice(servers.indexOf(first.api), 1)
    await expect(pending).rejects.toMatchObject({ code: 'GN_NO_DAEMON' })
    // Another daemon in the same place (its api.json): the next request finds it.
    const second = await server()
    writeFileSync(
      join(first.dataDir, 'api.json'),
      JSON.stringify({ url: second.url, pid: process.pid, peerId: 'x' }),
    )
    expect(await DaemonClient.open({ dataDir: first.dataDir }).request('GET', '/v1/items/2')).toEqual({
      id: '2',
    })
    expect(second.seen.count).toBe(1)
  })
})

describe('a client without the channel', () => {
  test('an HTTP-only daemon (upgrade refused) is asked over HTTP', async () => {
    const { dataDir } = await server()
    // A fake that answers the upgrade with a plain 200, as a server without the channel does.
    const { createServer } = await import('node:http')
    const plain = createServer((req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' })
      res.end(JSON.stringify({ path: req.url, upgraded: req.headers.upgrade ?? null }))
    })
    await new Promise<void>((r) => plain.listen(0, '127.0.0.1', r))
    try {
      const plainUrl = `http://127.0.0.1:${(plain.address() as { port: number }).port}`
      writeFileSync(
        join(dataDir, 'api.json'),
        JSON.stringify({ url: plainUrl, pid: process.pid, peerId: 'x' }),
      )
      const client = DaemonClient.open({ dataDir })
      expect(await client.request('GET', '/v1/items/1')).toEqual({ path: '/v1/items/1', upgraded: null })
      expect(await client.request('GET', '/v1/items/2')).toEqual({ path: '/v1/items/2', upgraded: null })
    } finally {
      plain.closeAllConnections()
      plain.close()
    }
  })
})

describe('raw bytes without an upgrade', () => {
  test('frames sent as if the connection were a channel get an HTTP 400 and a closed socket', async () => {
    const { port } = await server()
    const s = tcpConnect(port, '127.0.0.1')
    sockets.push(s)
    const got: Buffer[] = []
    s.on('data', (d: Buffer) => got.push(d))
    s.on('error', () => {})
    s.write(encodeRequest(1, 'GET', '/v1/items/1'))
    await closed(s)
    expect(Buffer.concat(got).toString('latin1')).toMatch(/^HTTP\/1\.1 400/)
  })
})
