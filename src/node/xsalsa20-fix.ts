/**
 * A workaround for xsalsa20 1.2 (the cipher under @libp2p/pnet's private
 * networks). All its instances share one WebAssembly memory, and each keeps
 * its own view of it. When one instance grows the memory (a chunk larger
 * than ~590 KB), every other instance's view is detached (length 0), so its
 * next update "grows" the memory again by its whole size: with big writes on
 * a few connections the memory reaches its 64 MB maximum within seconds and
 * the process dies with "WebAssembly.Memory.grow(): Maximum memory size
 * exceeded" (seen moving file pieces of 4 MiB between daemons). Here every
 * update first swaps a detached view for the latest live one.
 */
import XSalsa20 from 'xsalsa20'

interface WasmXor {
  _memory: Uint8Array
  update(input: Uint8Array, output: Uint8Array): void
}

let patched = false

export function patchXsalsa20(): void {
  if (patched) return
  patched = true
  const probe = XSalsa20(new Uint8Array(24), new Uint8Array(32)) as unknown as { _xor?: WasmXor }
  const proto = probe._xor ? (Object.getPrototypeOf(probe._xor) as WasmXor) : undefined
  if (
    proto === undefined ||
    typeof proto.update !== 'function' ||
    !(probe._xor!._memory instanceof Uint8Array)
  )
    return // the pure-JS fallback, or another version: nothing to fix
  let latest: Uint8Array = probe._xor!._memory
  const update = proto.update
  proto.update = function (this: WasmXor, input: Uint8Array, output: Uint8Array) {
    if (this._memory.byteLength === 0 || this._memory.byteLength < latest.byteLength) this._memory = latest
    update.call(this, input, output)
    latest = this._memory
  }
}

patchXsalsa20()
