/**
 * Yamux window updates as go-yamux sends them. @chainsafe/libp2p-yamux 8
 * answers every data frame it reads with a window update frame, so each
 * request and each reply cost the other side a frame (sealed by Noise and
 * enciphered by the private network) and, being written in a tick of its own,
 * a write system call: on a 2-core VM that was a third of the daemons' socket
 * writes between two daemons. go-yamux (and the yamux spec's intent) waits
 * until half the receive window is used; so does this. Frames that carry a
 * flag (SYN, ACK) and paused streams go through unchanged.
 */
import { StreamState, YamuxStream } from '@chainsafe/libp2p-yamux/stream'

interface WindowState {
  state: StreamState
  recvWindow: number
  recvWindowCapacity: number
}

let patched = false

export function patchYamuxWindowUpdates(): void {
  if (patched) return
  patched = true
  const proto = YamuxStream.prototype as unknown as WindowState & { sendWindowUpdate?: () => void }
  const send = proto.sendWindowUpdate
  if (typeof send !== 'function') return // another version: leave it
  proto.sendWindowUpdate = function (this: WindowState) {
    const flagless =
      this.state === StreamState.SYNSent ||
      this.state === StreamState.Established ||
      this.state === StreamState.Finished
    if (flagless && this.recvWindowCapacity >= this.recvWindow / 2) return
    send.call(this)
  }
}

patchYamuxWindowUpdates()
