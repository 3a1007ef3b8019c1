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
