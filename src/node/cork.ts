/**
 * Fewer write system calls on peer connections. One message to a peer leaves
 * as several buffers (yamux's frame header and body, each sealed by Noise,
 * then enciphered by the private network's XSalsa20), and @libp2p/tcp writes
 * each buffer with a system call of its own: 4-5 per request measured with
 * strace, and on a 2-core VM a write that wakes the peer costs 50-300 us of
 * the daemon's main thread. Here the socket is corked at the first write of
 * a turn of the event loop and uncorked at setImmediate (node:http corks
 * responses the same way, to the next tick), so what one turn writes, a
 * request's frames and the window update before it included, leaves in one
 * writev.
 *
 * It wraps the connection protector, the first layer that sees the raw TCP
 * connection (`socket` is a public field of @libp2p/tcp's connection); any
 * other connection is left as it is.
 */
import { Socket } from 'node:net'
import type { ConnectionProtector, MessageStream } from '@libp2p/interface'

type ProtectorFactory<C> = (components: C) => ConnectionProtector

export function corkedWrites<C>(factory: ProtectorFactory<C>): ProtectorFactory<C> {
  return (components) => {
    const inner = factory(components)
    return {
      protect(connection: MessageStream, options) {
        corkPerTick(connection)
        return inner.protect(connection, options)
      },
    }
  }
}

function corkPerTick(connection: MessageStream): void {
  const c = connection as MessageStream & { socket?: unknown; sendData?: (...args: unknown[]) => unknown }
  const socket = c.socket
  const sendData = c.sendData
  if (!(socket instanceof Socket) || typeof sendData !== 'function') return
  let corked = false
  const uncork = () => {
    corked = false
    socket.uncork()
  }
  c.sendData = function (this: unknown, ...args: unknown[]) {
    if (!corked && !socket.destroyed) {
      corked = true
      socket.cork()
      setImmediate(uncork)
    }
    return sendData.apply(this, args)
  }
}
