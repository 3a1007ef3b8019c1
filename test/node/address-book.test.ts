import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, describe, expect, it } from 'vitest'
import { ADDRESS_BOOK_FILE, AddressBook, hostOf, MAX_ADDRS, MAX_PEERS } from '../../src/node/address-book.ts'

const dir = mkdtempSync(join(tmpdir(), 'gridnode-book-'))
afterAll(() => rmSync(dir, { recursive: true, force: true }))

const P1 = '12D3KooWGzBkbyzQ6dTmNZk6c1trJZaMp7MkcRjBoaMR3YAbUMok'
const P2 = '12D3KooWJWoaqZhDaoEFshF7Rh1bpY9ohihFhzcW6d69Lr2NASuq'

describe('AddressBook', () => {
  it('keeps only what a member announced at the address its connection really had', () => {
    const d = mkdtempSync(join(dir, 'a-'))
    const book = new AddressBook(d)
    book.note(
      P1,
      ['/ip4/127.0.0.1/tcp/4001', '/ip4/10.1.2.3/tcp/22', '/ip4/127.0.0.1/udp/4001/quic-v1', 'garbage'],
      '127.0.0.1',
      1,
    )
    book.note(P2, ['/ip4/10.9.9.9/tcp/1'], '127.0.0.2', 2) // nothing at its own address: not noted
    expect(book.dialable('self')).toEqual([`/ip4/127.0.0.1/tcp/4001/p2p/${P1}`])
    book.save()
    expect(new AddressBook(d).dialable('self')).toEqual([`/ip4/127.0.0.1/tcp/4001/p2p/${P1}`])
    expect(new AddressBook(d).dialable(P1)).toEqual([]) // never itself
  })

  it('writes only members, newest first, within its bounds', () => {
    const d = mkdtempSync(join(dir, 'b-'))
    const book = new AddressBook(d)
    const many = Array.from({ length: MAX_ADDRS + 3 }, (_, i) => `/ip4/127.0.0.1/tcp/${4000 + i}`)
    book.note(P1, many, '127.0.0.1', 1)
    book.note(P2, ['/ip4/127.0.0.1/tcp/5000'], '127.0.0.1', 2)
    book.save((peer) => peer === P1)
    const saved = JSON.parse(readFileSync(join(d, ADDRESS_BOOK_FILE), 'utf8'))
    expect(Object.keys(saved.peers)).toEqual([P1])
    expect(saved.peers[P1].addrs).toHaveLength(MAX_ADDRS)
    for (let i = 0; i < MAX_PEERS + 5; i++)
      book.note(
        `${P1.slice(0, -4)}${String(i).padStart(4, 'A')}`,
        ['/ip4/127.0.0.1/tcp/1'],
        '127.0.0.1',
        10 + i,
      )
    expect(new Set(book.dialable('self').map((a) => a.split('/p2p/')[1])).size).toBe(MAX_PEERS)
    expect(book.dialable('self')[0]).toContain(`${String(MAX_PEERS + 4).padStart(4, 'A')}`)
  })

  it('reads a malformed file as an empty book', () => {
    for (const text of [
      'not json',
      'null',
      '{"peers": 5}',
      `{"peers": {"x y": {"addrs": ["/ip4/1.2.3.4/tcp/1"]}, "${P1}": {"addrs": [7, "/dns4/evil/tcp/1"]}}}`,
    ]) {
      const d = mkdtempSync(join(dir, 'c-'))
      writeFileSync(join(d, ADDRESS_BOOK_FILE), text)
      expect(new AddressBook(d).dialable('self')).toEqual([])
    }
  })

  it('hostOf: the IP of a TCP multiaddr, nothing else', () => {
    expect(hostOf('/ip4/127.0.0.1/tcp/1')).toBe('127.0.0.1')
    expect(hostOf('/ip6/::1/tcp/1')).toBe('::1')
    expect(hostOf('/dns4/localhost/tcp/1')).toBeUndefined()
    expect(hostOf('/ip4/127.0.0.1/udp/1')).toBeUndefined()
    expect(hostOf('nonsense')).toBeUndefined()
  })
})
