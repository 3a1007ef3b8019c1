import { encode } from 'cborg'
import { expect } from 'vitest'
import { RemoteProtocolError } from '../../src/errors.ts'

/** Encodes `value` with plain cborg and returns the RemoteProtocolError message `decode` throws. */
export function rejected(decode: (b: Uint8Array) => unknown, value: unknown): string {
  try {
    decode(encode(value))
  } catch (err) {
    expect(err).toBeInstanceOf(RemoteProtocolError)
    return (err as Error).message
  }
  throw new Error(`decode accepted ${JSON.stringify(value).slice(0, 200)}`)
}

/** Applies each edit to a copy of `good` and expects decoding to fail with the paired message. */
export function expectRejections(
  decode: (b: Uint8Array) => unknown,
  good: Record<string, unknown>,
  edits: Array<[(w: Record<string, unknown>) => void, RegExp]>,
): void {
  for (const [edit, message] of edits) {
    const w = structuredClone(good)
    edit(w)
    expect(rejected(decode, w)).toMatch(message)
  }
}
