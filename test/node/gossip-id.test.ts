/**
 * The id gossipsub uses to drop copies of a message before verifying their signature
 * (create-node.ts, `fastMsgIdFn`): the same for every copy of one message, different for any
 * other publisher or sequence number, and no id a signed message could have when a field is missing.
 */
import { describe, expect, test } from 'vitest'
import { gossipFastMsgId } from '../../src/node/create-node.ts'

const bytes = (...b: number[]) => new Uint8Array(b)

describe('gossip fast message id', () => {
  test('copies agree; another publisher or sequence number differs; views of larger buffers read only their bytes', () => {
    const from = bytes(0, 36, 8, 1, 18, 32, 7, 7)
    const seqno = bytes(0x18, 0x2c, 0, 0, 0, 0, 0, 1)
    const id = gossipFastMsgId({ from, seqno })
    expect(gossipFastMsgId({ from: from.slice(), seqno: seqno.slice() })).toBe(id)
    const padded = new Uint8Array(32)
    padded.set(from, 3)
    expect(gossipFastMsgId({ from: padded.subarray(3, 3 + from.length), seqno })).toBe(id)
    expect(gossipFastMsgId({ from, seqno: bytes(0x18, 0x2c, 0, 0, 0, 0, 0, 2) })).not.toBe(id)
    expect(gossipFastMsgId({ from: bytes(0, 36, 8, 1, 18, 32, 7, 8), seqno })).not.toBe(id)
    // Field boundaries are kept: moving a byte from one field to the other changes the id.
    expect(gossipFastMsgId({ from: bytes(1, 2), seqno: bytes(3) })).not.toBe(
      gossipFastMsgId({ from: bytes(1), seqno: bytes(2, 3) }),
    )
  })

  test('a message without publisher or sequence number (refused under StrictSign) gets the empty id', () => {
    expect(gossipFastMsgId({ seqno: bytes(1) })).toBe('')
    expect(gossipFastMsgId({ from: bytes(1) })).toBe('')
    expect(gossipFastMsgId({ from: bytes(), seqno: bytes() })).not.toBe('')
  })
})
