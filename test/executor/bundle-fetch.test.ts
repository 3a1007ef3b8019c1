import { describe, expect, test } from 'vitest'
import { BundleSources } from '../../src/executor/bundle-fetch.ts'

function sources(have: Record<string, Uint8Array | 'throws' | undefined>, peers: string[]) {
  const asked: string[] = []
  const fetched: number[] = []
  const errors: string[] = []
  const s = new BundleSources({
    self: 'me',
    peers: () => peers,
    fetchBlob: async (peer) => {
      asked.push(peer)
      const v = have[peer]
      if (v === 'throws') throw new Error(`${peer} reset`)
      return v
    },
    onFetched: (n) => fetched.push(n),
    onError: (peer, _hash, err) => errors.push(`${peer}: ${err.message}`),
  })
  return { s, asked, fetched, errors }
}

describe('bundle sources', () => {
  test('the job’s owner is asked first, then each connected peer once; never this node', async () => {
    const { s, asked, fetched } = sources({ c: new Uint8Array(3) }, ['me', 'b', 'owner', 'c', 'd'])
    s.ownedBy('h1', 'owner')
    expect(await s.fetch('h1')).toHaveLength(3)
    expect(asked).toEqual(['owner', 'b', 'c'])
    expect(fetched).toEqual([3])
  })

  test('a peer that fails is skipped; none having it is one clear error', async () => {
    const { s, asked, errors } = sources({ a: 'throws', b: undefined }, ['a', 'b'])
    await expect(s.fetch('0123456789abcdef')).rejects.toThrow(
      'bundle 0123456789ab is not available from 2 peers',
    )
    expect(asked).toEqual(['a', 'b'])
    expect(errors).toEqual(['a: a reset'])
  })
})
