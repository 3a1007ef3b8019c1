import { describe, expect, it } from 'vitest'
import { leaseRequestCodec } from '../../src/protocol/lease/codec.ts'
import { resultRequestCodec } from '../../src/protocol/result/codec.ts'
import { isPeerIdString, MAX_CUSTODY_LINKS } from '../../src/protocol/schemas.ts'
import { stealRequestCodec } from '../../src/protocol/steal/codec.ts'
import { expectRejections } from './codec-helpers.ts'
import { at, batch, PEER_A, PEER_B, results, wireObject } from './fixtures.ts'

const custody = (links = 1) => ({
  first: PEER_B,
  tag: new Uint8Array(16),
  links: Array.from({ length: links }, () => ({ to: PEER_A, sig: new Uint8Array(64) })),
})

describe('peer IDs and custody credentials at decode', () => {
  it('a peer key must parse as a peer ID in canonical form', () => {
    expect(isPeerIdString(PEER_A)).toBe(true)
    expect(isPeerIdString('x')).toBe(false)
    expect(isPeerIdString(`${PEER_A}x`)).toBe(false)
    // Cached verdicts stay right.
    expect(isPeerIdString('x')).toBe(false)
    expect(isPeerIdString(PEER_A)).toBe(true)
  })

  it('a pushed batch naming an owner that is no peer ID is refused at decode', () => {
    const good = wireObject({ t: 'push', batch: batch() })
    expectRejections(stealRequestCodec.decode, good, [
      [(w) => (at(w, 'batch.jobs.0').owner = 'x'), /batch\.jobs\[0\]\.owner: not a peer ID/],
      [
        (w) => (at(w, 'batch.tasks.0').custody = { ...custody(), first: 'x' }),
        /custody\.first: not a peer ID/,
      ],
      [(w) => (at(w, 'batch.tasks.0').custody = { ...custody(), tag: new Uint8Array(15) }), /custody\.tag/],
      [
        (w) => (at(w, 'batch.tasks.0').custody = custody(MAX_CUSTODY_LINKS + 1)),
        /custody\.links: more than 16/,
      ],
      [
        (w) =>
          (at(w, 'batch.tasks.0').custody = {
            ...custody(),
            links: [{ to: PEER_A, sig: new Uint8Array(63) }],
          }),
        /links\[0\]\.sig/,
      ],
      [(w) => (at(w, 'batch.tasks.0').custody = { ...custody(), extra: 1 }), /unexpected field "extra"/],
    ])
  })

  it('results and lease holdings may carry credentials', () => {
    const rs = results().map((r) => ({ ...r, custody: custody(2) }))
    const req = { t: 'results' as const, results: rs }
    expect(resultRequestCodec.decode(resultRequestCodec.encode(req))).toEqual(req)
    const holdings = [
      { job: 'job-1', index: 0, attempt: 1, copy: 1, custody: custody(0) },
      { job: 'job-1', index: 1, attempt: 1, copy: 3, custody: custody(2) },
      { job: 'job-1', index: 2, attempt: 1, copy: 2 },
    ]
    const lease = { t: 'lease' as const, holdings }
    expect(leaseRequestCodec.decode(leaseRequestCodec.encode(lease))).toEqual(lease)
    // The copy is the one the credentials prove (links + 1): the owner trusts it where it skips them.
    expectRejections(leaseRequestCodec.decode, wireObject(lease), [
      [
        (w) => (at(w, 'holdings.0').copy = 2),
        /holdings\[0\]\.copy: expected 1 \(its credentials' links \+ 1\)/,
      ],
      [(w) => (at(w, 'holdings.1').copy = 1), /holdings\[1\]\.copy: expected 3/],
    ])
    const bad = wireObject({ t: 'results', results: results() })
    expectRejections(resultRequestCodec.decode, bad, [
      [(w) => (at(w, 'results.0').ranOn = 'not-a-peer'), /results\[0\]\.ranOn: not a peer ID/],
    ])
  })
})
