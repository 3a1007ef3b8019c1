import { describe, expect, test } from 'vitest'
import type { GridLibp2p } from '../../src/node/create-node.ts'
import { PeerLinks } from '../../src/node/peer-links.ts'
import type { TaskResult } from '../../src/scheduler/types.ts'

describe('PeerLinks', () => {
  test('a key that is no peer ID never throws: each request rejects instead', async () => {
    let dials = 0
    const node = {
      dialProtocol: () => {
        dials++
        return Promise.reject(new Error('unreachable'))
      },
    } as unknown as GridLibp2p
    const links = new PeerLinks(node, { onLateBatch: () => {} })
    const link = links.get('x')
    await expect(link.lease.lease({ holdings: [] })).rejects.toThrow()
    await expect(link.steal.push({ batch: { jobs: [], tasks: [] } })).rejects.toThrow()
    await expect(links.fetchBlob('x', 'a'.repeat(64))).rejects.toThrow()
    expect(dials).toBe(0)
    links.close()
  })
})

describe('PeerLinks results', () => {
  const node = { dialProtocol: () => Promise.reject(new Error('unused')) } as unknown as GridLibp2p
  const result = (index: number, bytes = 8): TaskResult => ({
    job: 'j',
    index,
    attempt: 0,
    ranOn: 'me',
    outcome: { status: 'ok', value: new Uint8Array(bytes), durationMs: 1 },
  })
  const turn = () => new Promise((r) => setImmediate(r))

  test('one message in flight per owner: what comes meanwhile leaves in one message once it is answered', async () => {
    const links = new PeerLinks(node, { onLateBatch: () => {} })
    const sent: Array<[string, number[]]> = []
    const answers: Array<() => void> = []
    const send = (to: string, rs: TaskResult[]) => {
      sent.push([to, rs.map((r) => r.index)])
      return new Promise<void>((resolve, reject) =>
        answers.push(sent.length === 2 ? () => reject(new Error('lost')) : resolve),
      )
    }
    links.queueResults('o', [result(0)], send)
    await turn()
    expect(sent).toEqual([['o', [0]]])
    links.queueResults('o', [result(1)], send)
    links.queueResults('o', [result(2)], send)
    links.queueResults('p', [result(3)], send) // another owner is not held up
    await turn()
    await turn()
    expect(sent).toEqual([
      ['o', [0]],
      ['p', [3]],
    ])
    answers[0]()
    await turn()
    await turn()
    expect(sent.slice(2)).toEqual([['o', [1, 2]]])
    // A failed send frees the owner too (the scheduler resends what was lost).
    links.queueResults('o', [result(4)], send)
    answers[2]()
    await turn()
    await turn()
    expect(sent.slice(3)).toEqual([['o', [4]]])
    links.close()
  })

  test('a batch is split to stay within the message size', async () => {
    const links = new PeerLinks(node, { onLateBatch: () => {} })
    const sent: number[][] = []
    const send = (_to: string, rs: TaskResult[]) => {
      sent.push(rs.map((r) => r.index))
      return Promise.resolve()
    }
    links.queueResults(
      'o',
      [0, 1, 2, 3, 4].map((i) => result(i, 3 * 1024 * 1024)),
      send,
    )
    await turn()
    expect(sent).toEqual([[0, 1], [2, 3], [4]])
    links.close()
  })
})
