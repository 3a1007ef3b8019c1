/**
 * The two adapters that cut system calls on peer connections: writes corked
 * per turn of the event loop (src/node/cork.ts), and yamux window updates
 * only once half the window is used (src/node/yamux-window.ts).
 */
import { createServer, type Server, Socket } from 'node:net'
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'
import type { ConnectionProtector, MessageStream } from '@libp2p/interface'
import { afterEach, describe, expect, test } from 'vitest'
import { corkedWrites } from '../../src/node/cork.ts'
import '../../src/node/yamux-window.ts'

let server: Server | undefined
afterEach(() => server?.close())

async function connectedSocket(): Promise<{ socket: Socket; received: Promise<Buffer> }> {
  const chunks: Buffer[] = []
  const received = Promise.withResolvers<Buffer>()
  server = createServer((s) => {
    s.on('data', (d) => chunks.push(d))
    s.on('end', () => received.resolve(Buffer.concat(chunks)))
  })
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r))
  const socket = new Socket()
  await new Promise<void>((r) => socket.connect((server!.address() as { port: number }).port, '127.0.0.1', r))
  return { socket, received: received.promise }
}

describe('corked writes', () => {
  test('what one turn writes leaves in one writev, and every byte arrives in order', async () => {
    const { socket, received } = await connectedSocket()
    const calls: string[] = []
    const write = socket._write.bind(socket)
    const writev = socket._writev!.bind(socket)
    socket._write = (chunk, enc, cb) => {
      calls.push('write')
      write(chunk, enc, cb)
    }
    socket._writev = (chunks, cb) => {
      calls.push(`writev ${chunks.length}`)
      writev(chunks, cb)
    }
    // A connection like @libp2p/tcp's: a public socket, and sendData writing each buffer.
    const conn = {
      socket,
      sendData(bufs: Uint8Array[]) {
        for (const b of bufs) socket.write(b)
        return { sentBytes: 0, canSendMore: true }
      },
    }
    const inner: ConnectionProtector = { protect: async (c: MessageStream) => c }
    await corkedWrites(() => inner)({}).protect(conn as unknown as MessageStream)
    conn.sendData([Buffer.from('a'), Buffer.from('b')])
    await Promise.resolve()
    conn.sendData([Buffer.from('c')])
    await new Promise((r) => setImmediate(r))
    conn.sendData([Buffer.from('d')])
    await new Promise((r) => setImmediate(r))
    socket.end()
    expect((await received).toString()).toBe('abcd')
    expect(calls).toEqual(['writev 3', 'write'])
  })

  test('a connection that is not a TCP socket is left as it was', async () => {
    const sendData = () => ({ sentBytes: 0, canSendMore: true })
    const conn = { sendData }
    const inner: ConnectionProtector = { protect: async (c: MessageStream) => c }
    await corkedWrites(() => inner)({}).protect(conn as unknown as MessageStream)
    expect(conn.sendData).toBe(sendData)
  })
})

describe('yamux window updates', () => {
  function stream(capacity: number, state = StreamState.Established) {
    const frames: Array<{ length: number; flag: number }> = []
    const s = Object.create(YamuxStream.prototype) as Record<string, unknown>
    Object.assign(s, {
      state,
      recvWindow: 256 * 1024,
      recvWindowCapacity: capacity,
      epochStart: Date.now(),
      getRTT: () => -1,
      sendFrame: (f: { length: number; flag: number }) => frames.push(f),
    })
    return { s: s as unknown as { sendWindowUpdate(): void; recvWindowCapacity: number }, frames }
  }

  test('none while more than half the receive window is left', () => {
    const { s, frames } = stream(256 * 1024 - 300)
    s.sendWindowUpdate()
    expect(frames).toEqual([])
  })

  test('the whole used part once half or more is used', () => {
    const { s, frames } = stream(100 * 1024)
    s.sendWindowUpdate()
    expect(frames).toMatchObject([{ length: 156 * 1024, flag: 0 }])
    expect(s.recvWindowCapacity).toBe(256 * 1024)
  })

  test('a frame with a flag still goes at once (the ACK of a new stream)', () => {
    const { s, frames } = stream(256 * 1024, StreamState.SYNReceived)
    s.sendWindowUpdate()
    expect(frames).toHaveLength(1)
    expect(frames[0].flag).not.toBe(0)
  })
})
