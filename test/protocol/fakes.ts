/**
 * An in-memory stand-in for libp2p's registrar and dialer: handlers are
 * registered as on a node, and `opener()` gives the `open` function a client
 * needs, each call making a fresh in-memory stream pair (from @libp2p/utils,
 * the one libp2p's own tests use) whose inbound end goes to the handler.
 */
import type { Stream } from '@libp2p/interface'
import { type StreamPairOptions, streamPair } from '@libp2p/utils'
import type {
  HandlerLimits,
  OpenStream,
  PeerConnection,
  ProtocolHandler,
  ProtocolRegistrar,
} from '../../src/protocol/stream.ts'

export function connectionFrom(peerId: string): PeerConnection {
  return { remotePeer: { toString: () => peerId } }
}

export interface Served {
  inbound: Stream
  outbound: Stream
  /** The handler's promise: settles when it is done with the stream. */
  done: Promise<void>
}

export class FakeRegistrar implements ProtocolRegistrar {
  readonly handlers = new Map<string, { handler: ProtocolHandler; options?: HandlerLimits }>()
  readonly served: Served[] = []
  opened = 0

  async handle(protocol: string, handler: ProtocolHandler, options?: HandlerLimits): Promise<void> {
    this.handlers.set(protocol, { handler, options })
  }

  /** Opens a stream pair and hands its inbound end to the protocol's handler, as from `peerId`. */
  async connect(protocol: string, peerId: string, opts: StreamPairOptions = {}): Promise<Served> {
    const entry = this.handlers.get(protocol)
    if (entry === undefined) throw new Error(`no handler for ${protocol}`)
    const [outbound, inbound] = await streamPair({ delay: 0, ...opts, protocol })
    const done = Promise.resolve(entry.handler(inbound, connectionFrom(peerId)))
    const served = { inbound, outbound, done }
    this.served.push(served)
    return served
  }

  opener(protocol: string, peerId: string, opts: StreamPairOptions = {}): OpenStream {
    return async (signal) => {
      signal.throwIfAborted()
      this.opened++
      return (await this.connect(protocol, peerId, opts)).outbound
    }
  }
}

/** Resolves when the stream has fully closed or been aborted/reset. */
export function whenClosed(stream: Stream): Promise<void> {
  if (stream.status !== 'open' && stream.status !== 'closing') return Promise.resolve()
  return new Promise((resolve) => stream.addEventListener('close', () => resolve(), { once: true }))
}

export function lengthPrefix(n: number): Uint8Array {
  const out: number[] = []
  do {
    let byte = n % 128
    n = Math.floor(n / 128)
    if (n > 0) byte |= 0x80
    out.push(byte)
  } while (n > 0)
  return Uint8Array.from(out)
}

/** One frame: varint length then body. */
export function frame(body: Uint8Array): Uint8Array {
  const prefix = lengthPrefix(body.byteLength)
  const out = new Uint8Array(prefix.byteLength + body.byteLength)
  out.set(prefix)
  out.set(body, prefix.byteLength)
  return out
}

/** Waits until `cond()` holds, polling; fails after `ms`. */
export async function until(cond: () => boolean, ms = 3000): Promise<void> {
  const deadline = Date.now() + ms
  while (!cond()) {
    if (Date.now() > deadline) throw new Error('condition not met in time')
    await new Promise((resolve) => setTimeout(resolve, 5))
  }
}
