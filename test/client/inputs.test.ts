import { describe, expect, it } from 'vitest'
import { BadInputError } from '../../src/client/errors.ts'
import { parseJsonLines, parsePlainLines } from '../../src/client/inputs.ts'

describe('parseJsonLines', () => {
  it('reads one JSON value per line, skipping blank lines and keeping line numbers', () => {
    const text = '1\n"two"\n\n{"three": [3]}\r\nnull\n'
    expect(parseJsonLines(text)).toEqual({ values: [1, 'two', { three: [3] }, null], lines: [1, 2, 4, 5] })
  })

  it('takes a last line without a newline', () => {
    expect(parseJsonLines('1\n2').values).toEqual([1, 2])
  })

  it('names the line, the source and what to do when a line is not JSON', () => {
    const err = (() => {
      try {
        parseJsonLines('1\n\nhello world\n', 'words.jsonl')
      } catch (e) {
        return e as BadInputError
      }
    })()
    expect(err).toBeInstanceOf(BadInputError)
    expect(err?.code).toBe('GN_BAD_INPUT')
    expect(err?.message).toMatch(
      /^words\.jsonl line 3 is not JSON \(.+\): "hello world"; put one JSON value per line/,
    )
    expect(err?.message).not.toContain('\n')
  })

  it('shortens a long bad line in the message', () => {
    expect(() => parseJsonLines(`{${'x'.repeat(500)}`)).toThrow(/"\{x{39}…"/)
  })

  it('gives no values for empty text', () => {
    expect(parseJsonLines('')).toEqual({ values: [], lines: [] })
    expect(parseJsonLines('\n  \n')).toEqual({ values: [], lines: [] })
  })
})

describe('parsePlainLines', () => {
  it('takes each non-blank line as a string, as it is', () => {
    expect(parsePlainLines('a b\n\n "quoted" \r\nlast')).toEqual({
      values: ['a b', ' "quoted" ', 'last'],
      lines: [1, 3, 4],
    })
  })
})
