/** A minimal reader for server-sent events from a fetch Response. */
export interface SseEvent {
  event: string
  data: string
}

export async function* readSse(res: Response): AsyncGenerator<SseEvent> {
  if (!res.body) return
  const decoder = new TextDecoder()
  let buffer = ''
  for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) {
    buffer += decoder.decode(chunk, { stream: true })
    let end = buffer.indexOf('\n\n')
    while (end >= 0) {
      const block = buffer.slice(0, end)
      buffer = buffer.slice(end + 2)
      let event = 'message'
      const data: string[] = []
      for (const line of block.split('\n')) {
        if (line.startsWith('event: ')) event = line.slice(7)
        else if (line.startsWith('data: ')) data.push(line.slice(6))
      }
      yield { event, data: data.join('\n') }
      end = buffer.indexOf('\n\n')
    }
  }
}
