import { describe, expect, it } from 'vitest'
import { readSse, SseParser } from '../../src/client/sse.ts'

describe('SseParser', () => {
  it('dispatches an event at each blank line', () => {
    const p = new SseParser()
    expect(p.push('event: progress\ndata: {"done":1}\n\nevent: finished\ndata: {}\n\n')).toEqual([
      { event: 'progress', data: '{"done":1}' },
      { event: 'finished', data: '{}' },
    ])
  })

  it('joins events split across chunks anywhere, even inside a CRLF', () => {
    const text = 'event: results\r\ndata: [1,2]\r\n\r\nevent: progress\r\ndata: 3\r\n\r\n'
    for (let cut = 1; cut < text.length; cut++) {
      const p = new SseParser()
      const got = [...p.push(text.slice(0, cut)), ...p.push(text.slice(cut))]
      expect(got, `cut at ${cut}`).toEqual([
        { event: 'results', data: '[1,2]' },
        { event: 'progress', data: '3' },
      ])
    }
  })

  it('any chunking of a stream with mixed line ends and long lines gives the events of one chunk', () => {
    const long = 'x'.repeat(5000)
    const text = `event: a\rdata: ${long}\r\n\ndata: 1\ndata: 2\r\r: note\nevent: b\r\ndata: ${long}\n\n`
    const whole = new SseParser().push(text)
    expect(whole.map((e) => [e.event, e.data.length])).toEqual([
      ['a', 5000],
      ['message', 3],
      ['b', 5000],
    ])
    let seed = 7
    const rand = (n: number) => {
      seed = (seed * 1103515245 + 12345) % 2 ** 31
      return seed % n
    }
    for (let round = 0; round < 200; round++) {
      const p = new SseParser()
      const got = []
      for (let at = 0; at < text.length; ) {
        const n = 1 + rand(round % 2 === 0 ? 8 : 3000)
        got.push(...p.push(text.slice(at, at + n)))
        at += n
      }
      expect(got).toEqual(whole)
    }
  })

  it('an empty chunk between a CR and its LF changes nothing', () => {
    const p = new SseParser()
    expect([...p.push('data: x\r'), ...p.push(''), ...p.push('\ndata: y\n\n')]).toEqual([
      { event: 'message', data: 'x\ny' },
    ])
  })

  it('follows the spec: CR line ends, no space after the colon, multi-line data, comments, ids', () => {
    const p = new SseParser()
    expect(p.push(': keep-alive\r\rdata:a\rdata: b\rid: 7\r\r')).toEqual([
      { event: 'message', data: 'a\nb', id: '7' },
    ])
  })

  it('resets the event name after each dispatch and drops blocks without data', () => {
    const p = new SseParser()
    expect(p.push('event: blocked\n\ndata: x\n\n')).toEqual([{ event: 'message', data: 'x' }])
  })

  it('keeps an unfinished event until its blank line arrives', () => {
    const p = new SseParser()
    expect(p.push('event: a\ndata: 1\n')).toEqual([])
    expect(p.push('\n')).toEqual([{ event: 'a', data: '1' }])
  })
})

describe('readSse', () => {
  it('reads events from a streamed Response, multi-byte characters split across chunks', async () => {
    const bytes = new TextEncoder().encode('event: r\ndata: "π≈3.14"\n\n')
    const body = new ReadableStream<Uint8Array>({
      start(c) {
        for (const b of bytes) c.enqueue(new Uint8Array([b]))
        c.close()
      },
    })
    const events = []
    for await (const e of readSse(new Response(body))) events.push(e)
    expect(events).toEqual([{ event: 'r', data: '"π≈3.14"' }])
  })
})
