/**
 * The API channel end to end over real loopback sockets: a real ApiServer,
 * the library's DaemonClient, and raw sockets that misbehave.
 */

import { spawn } from 'node:child_process'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { request } from 'node:http'
import { createServer as createNetServer, type Socket, connect as tcpConnect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { pino } from 'pino'
import { afterEach, describe, expect, test } from 'vitest'
import { ClientChannel } from '../../src/client/api-channel.ts'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import {
  API_CHANNEL_PATH,
  API_CHANNEL_PROTOCOL,
  decodeFrame,
  encodeRequest,
  FRAME_ANSWER,
  FrameReader,
} from '../../src/domain/api-frames.ts'
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

async function server(
  port = 0,
): Promise<{ api: ApiServer; url: string; port: number; dataDir: string; seen: Seen }> {
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
  api.route('GET', '/v1/big', () => {
    seen.count++
    return { text: 'x'.repeat(256 * 1024) }
  })
  api.route('GET', '/v1/odd/:what', (req) => {
    if (req.params.what === 'symbol') return Symbol('not JSON')
    throw undefined
  })
  api.httpRoute('GET', '/v1/stream', (req) => {
    req.res.end('raw')
    return STREAMED
  })
  servers.push(api)
  const url = await api.listen('127.0.0.1', port)
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

/** One plain HTTP request on a connection of its own: the status and the body's text. */
function ask(
  port: number,
  method: string,
  path: string,
  headers: Record<string, string>,
  body?: string,
): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: '127.0.0.1', port, path, method, agent: false, headers })
    req.on('response', (res) => {
      let text = ''
      res.on('data', (d: Buffer) => {
        text += d
      })
      res.on('end', () => resolve({ status: res.statusCode ?? 0, text }))
    })
    req.on('error', reject)
    req.end(body)
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
    // Another protocol, or another path, is no channel: a plain HTTP request (no such route here).
    expect((await upgrade(port, { ...GOOD, upgrade: 'websocket' })).status).toBe(404)
    expect((await upgrade(port, GOOD, '/v1/status')).status).toBe(404)
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
    // A raw client: the library's own never has more than MAX_SENT out.
    const { port } = await server()
    const { socket } = await upgrade(port, GOOD)
    const reader = new FrameReader(1 << 20)
    const answers: Array<{ id: number; status: number }> = []
    socket!.on('data', (d: Buffer) => {
      for (const f of reader.push(d)) {
        const a = decodeFrame(f)
        if (a.kind === FRAME_ANSWER) answers.push({ id: a.id, status: a.status })
      }
    })
    const n = MAX_CHANNEL_IN_FLIGHT
    socket!.write(
      Buffer.concat(Array.from({ length: n }, (_, i) => encodeRequest(i + 1, 'GET', `/v1/slow?n=${i}`))),
    )
    socket!.write(encodeRequest(n + 1, 'GET', '/v1/items/1'))
    await expect.poll(() => answers).toEqual([{ id: n + 1, status: 503 }])
  })

  test("a daemon's stop closes its channels; the library opens one to the daemon that comes back", async () => {
    const first = await server()
    const client = DaemonClient.open({ dataDir: first.dataDir })
    expect(await client.request('GET', '/v1/items/1')).toEqual({ id: '1' })
    expect(first.api.channelCount).toBe(1)
    const pending = client.request('GET', '/v1/slow?n=z')
    await expect.poll(() => first.seen.signals.has('z')).toBe(true)
    await first.api.close()
    servers.splice(servers.indexOf(first.api), 1)
    await expect(pending).rejects.toMatchObject({ code: 'GN_NO_DAEMON' })
    // Another daemon at the same address: the next request opens a channel to it.
    const second = await server(first.port)
    expect(second.url).toBe(first.url)
    expect(await client.request('GET', '/v1/items/2')).toEqual({ id: '2' })
    expect(second.api.channelCount).toBe(1)
  })

  test('more requests than may be in flight at once wait their turn in the client instead of failing', async () => {
    const { dataDir, api } = await server()
    const client = DaemonClient.open({ dataDir })
    const n = MAX_CHANNEL_IN_FLIGHT + 500
    const answers = await Promise.all(
      Array.from({ length: n }, (_, i) => client.request<{ n: string }>('GET', `/v1/slow?n=${i}&ms=20`)),
    )
    expect(answers.map((a) => Number(a.n))).toEqual(Array.from({ length: n }, (_, i) => i))
    expect(api.channelCount).toBe(1)
  })

  test('request ids that wrap around skip those still in flight', async () => {
    const { url } = await server()
    const ch = (await ClientChannel.open(url, `Bearer ${TOKEN}`))!
    try {
      const ids = ch as unknown as { nextId: number }
      ids.nextId = 0xffff_ffff
      const last = ch.request('GET', '/v1/slow?n=last&ms=300')
      const first = ch.request('GET', '/v1/slow?n=first&ms=300')
      // As if 2^32 more requests had been made while these two waited.
      ids.nextId = 0xffff_ffff
      const third = ch.request('GET', '/v1/items/third')
      expect(JSON.parse((await third).text)).toEqual({ id: 'third' })
      expect(JSON.parse((await last).text)).toEqual({ n: 'last' })
      expect(JSON.parse((await first).text)).toEqual({ n: 'first' })
      expect(ch.open).toBe(true)
    } finally {
      ch.close()
    }
  })

  test('a handler answering what JSON cannot carry, or throwing a non-error, gets a 500; the channel stays', async () => {
    const { url } = await server()
    const ch = (await ClientChannel.open(url, `Bearer ${TOKEN}`))!
    try {
      for (const what of ['symbol', 'undefined']) {
        const a = await ch.request('GET', `/v1/odd/${what}`)
        expect([a.status, JSON.parse(a.text).error.code], what).toEqual([500, 'GN_INTERNAL'])
      }
      expect(JSON.parse((await ch.request('GET', '/v1/items/1')).text)).toEqual({ id: '1' })
    } finally {
      ch.close()
    }
  })

  test('checks path, method and body in the order HTTP does, and normalizes paths the same way', async () => {
    const { url, port } = await server()
    const ch = (await ClientChannel.open(url, `Bearer ${TOKEN}`))!
    const overHttp = (method: string, path: string, body?: string) =>
      ask(port, method, path, { authorization: `Bearer ${TOKEN}`, 'content-type': 'application/json' }, body)
    try {
      const cases: Array<[string, string, string | undefined]> = [
        ['PUT', '/v1/echo', '{not json'], // wrong method before a bad body
        ['POST', '/v1/echo', '{not json'],
        ['POST', '/v1/echo', ''], // an empty body is no body
        ['GET', '/v1/items/./x', undefined],
        ['GET', '/v1/zz/../items/y', undefined],
        ['GET', '/v1/items/%41%zz', undefined],
        ['GET', '/v1/items/a#frag', undefined],
      ]
      for (const [method, path, body] of cases) {
        const viaChannel = await ch.request(method, path, body)
        const viaHttp = await overHttp(method, path, body)
        const strip = (t: string) => (t === '' ? '' : JSON.stringify({ ...JSON.parse(t), host: undefined }))
        expect([viaChannel.status, strip(viaChannel.text)], `${method} ${path}`).toEqual([
          viaHttp.status,
          strip(viaHttp.text),
        ])
      }
      // A GET's body is not read; no route is found before a bad body is.
      const get = await ch.request('GET', '/v1/items/1', '{not json')
      expect([get.status, JSON.parse(get.text)]).toEqual([200, { id: '1' }])
      const none = await ch.request('POST', '/v1/nothing', '{not json')
      expect([none.status, JSON.parse(none.text).error.code]).toEqual([404, 'GN_NOT_FOUND'])
      const empty = await ch.request('POST', '/v1/echo', new Uint8Array(0))
      expect(JSON.parse(empty.text)).not.toHaveProperty('body')
    } finally {
      ch.close()
    }
  })

  test("stops reading a client's requests while it leaves their answers unread, and serves them once it reads", async () => {
    const { port, seen } = await server()
    const { socket } = await upgrade(port, GOOD)
    const s = socket!
    s.pause()
    // 400 requests for 256 KiB answers (100 MiB in all), a few at a time, none of the answers read.
    let id = 0
    for (let round = 0; round < 40; round++) {
      s.write(Buffer.concat(Array.from({ length: 10 }, () => encodeRequest(++id, 'GET', '/v1/big'))))
      await new Promise((r) => setTimeout(r, 10))
    }
    await new Promise((r) => setTimeout(r, 300))
    const whilePaused = seen.count
    expect(whilePaused).toBeLessThan(400)
    // Reading again: every request is answered.
    let bytes = 0
    s.on('data', (d: Buffer) => {
      bytes += d.length
    })
    s.resume()
    await expect.poll(() => seen.count, { timeout: 20_000 }).toBe(400)
    await expect.poll(() => bytes, { timeout: 20_000 }).toBeGreaterThan(400 * 256 * 1024)
  })

  test('a refused upgrade is closed by the daemon, even when the client keeps its side open', async () => {
    const { port, api } = await server()
    const held: Socket[] = []
    for (const auth of ['Bearer wrong', '']) {
      const s = tcpConnect({ port, host: '127.0.0.1', allowHalfOpen: true })
      sockets.push(s)
      held.push(s)
      s.on('error', () => {})
      s.write(
        `GET ${API_CHANNEL_PATH} HTTP/1.1\r\nhost: x\r\nconnection: Upgrade\r\nupgrade: ${API_CHANNEL_PROTOCOL}\r\nauthorization: ${auth}\r\n\r\n`,
      )
    }
    await Promise.all(
      held.map((s) => {
        const ended = new Promise((r) => s.once('end', r))
        s.resume()
        return ended
      }),
    )
    // The API closes at once: nothing of those connections is left to wait for.
    const t0 = Date.now()
    await api.close()
    expect(Date.now() - t0).toBeLessThan(2000)
    servers.splice(servers.indexOf(api), 1)
  })

  test('a plain request with an Upgrade header for another protocol (h2c) is answered as HTTP', async () => {
    const { port } = await server()
    const answer = await ask(port, 'GET', '/v1/items/7', {
      authorization: `Bearer ${TOKEN}`,
      connection: 'Upgrade, HTTP2-Settings',
      upgrade: 'h2c',
      'http2-settings': 'AAMAAABkAARAAAAAAAIAAAAA',
    })
    expect(answer).toEqual({ status: 200, text: JSON.stringify({ id: '7' }) })
  })
})

describe('the channel and the client process', () => {
  test('an idle channel does not keep the process alive', async () => {
    const { dataDir, api } = await server()
    const client = new URL('../../src/client/daemon-client.ts', import.meta.url).pathname
    const code = `import { DaemonClient } from ${JSON.stringify(client)}
const c = DaemonClient.open({ dataDir: ${JSON.stringify(dataDir)} })
console.log(JSON.stringify(await c.request('GET', '/v1/items/5')))`
    const child = spawn(process.execPath, ['--input-type=module', '-e', code], {
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d
    })
    const exit = await new Promise<number | string>((resolve) => {
      const t = setTimeout(() => {
        child.kill('SIGKILL')
        resolve('still running after 10 s')
      }, 10_000)
      child.on('exit', (code: number | null) => {
        clearTimeout(t)
        resolve(code ?? -1)
      })
    })
    expect(exit).toBe(0)
    expect(out.trim()).toBe(JSON.stringify({ id: '5' }))
    await expect.poll(() => api.channelCount).toBe(0)
  })

  test("a daemon that takes the connection and never answers: the caller's signal still ends the request", async () => {
    const { dataDir } = await server()
    const mute = createNetServer(() => {})
    await new Promise<void>((r) => mute.listen(0, '127.0.0.1', r))
    try {
      const port = (mute.address() as { port: number }).port
      writeFileSync(
        join(dataDir, 'api.json'),
        JSON.stringify({ url: `http://127.0.0.1:${port}`, pid: process.pid, peerId: 'x' }),
      )
      const t0 = Date.now()
      await expect(
        DaemonClient.open({ dataDir }).request('GET', '/v1/items/1', undefined, AbortSignal.timeout(300)),
      ).rejects.toMatchObject({ name: 'AbortError' })
      expect(Date.now() - t0).toBeLessThan(3000)
    } finally {
      mute.close()
    }
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
