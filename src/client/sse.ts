/**
 * A reader for server-sent events from a fetch Response. The parsing is a
 * small pure class (SseParser) fed text in whatever chunks the network gives,
 * following the WHATWG rules the daemon relies on: LF, CRLF or CR line ends,
 * `field: value` or `field:value`, several `data:` lines joined by "\n",
 * comments (`:`) ignored, and an event dispatched at each blank line.
 */
export interface SseEvent {
  event: string
  data: string
  /** The `id:` field, when the server sent one. */
  id?: string
}

export class SseParser {
  /** The line begun and not ended yet (it holds no line end). */
  private buffer = ''
  private event = ''
  private data: string[] = []
  private id: string | undefined
  /** A CR ended the last chunk: an LF starting the next one belongs to it. */
  private pendingCr = false

  /**
   * Feeds a chunk of text; returns the events it completed. Only the chunk is searched for line
   * ends (the carried part has none), so a line of a megabyte arriving in 64 KB chunks is read
   * once, not once per chunk.
   */
  push(chunk: string): SseEvent[] {
    // An empty chunk between a CR and its LF must not forget the CR.
    if (chunk === '') return []
    if (this.pendingCr && chunk.startsWith('\n')) chunk = chunk.slice(1)
    this.pendingCr = chunk.endsWith('\r')
    const out: SseEvent[] = []
    let from = 0
    let lf = chunk.indexOf('\n')
    let cr = chunk.indexOf('\r')
    while (lf >= 0 || cr >= 0) {
      const end = lf < 0 ? cr : cr < 0 ? lf : Math.min(lf, cr)
      const line = this.buffer + chunk.slice(from, end)
      this.buffer = ''
      from = end + (end === cr && lf === cr + 1 ? 2 : 1)
      if (lf >= 0 && lf < from) lf = chunk.indexOf('\n', from)
      if (cr >= 0 && cr < from) cr = chunk.indexOf('\r', from)
      const e = this.line(line)
      if (e) out.push(e)
    }
    this.buffer += chunk.slice(from)
    return out
  }

  private line(line: string): SseEvent | undefined {
    if (line === '') return this.dispatch()
    if (line.startsWith(':')) return undefined
    const colon = line.indexOf(':')
    const field = colon < 0 ? line : line.slice(0, colon)
    let value = colon < 0 ? '' : line.slice(colon + 1)
    if (value.startsWith(' ')) value = value.slice(1)
    if (field === 'event') this.event = value
    else if (field === 'data') this.data.push(value)
    else if (field === 'id') this.id = value
    return undefined
  }

  private dispatch(): SseEvent | undefined {
    const hadData = this.data.length > 0
    const e: SseEvent = { event: this.event || 'message', data: this.data.join('\n') }
    if (this.id !== undefined) e.id = this.id
    this.event = ''
    this.data = []
    // Per the spec, a block without data lines dispatches nothing.
    return hadData ? e : undefined
  }
}

export async function* readSse(res: Response): AsyncGenerator<SseEvent> {
  if (!res.body) return
  const decoder = new TextDecoder()
  const parser = new SseParser()
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    yield* parser.push(decoder.decode(chunk, { stream: true }))
  }
  yield* parser.push(decoder.decode())
}
