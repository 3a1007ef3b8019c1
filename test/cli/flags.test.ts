/** The CLI's flag parsers: one message per flag, whatever the bad value. */
import { InvalidArgumentError } from 'commander'
import { describe, expect, it } from 'vitest'
import { byteSize, positiveNumber, wholeNumber } from '../../cli/flags.ts'

function message(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError)
    return (err as Error).message
  }
  throw new Error('expected the parser to refuse')
}

describe('flag parsers', () => {
  it('--cpu and --limit say the same thing for "abc", "0", "-1" and "1.5"', () => {
    const said = new Set(['abc', '0', '-1', '1.5', ''].map((v) => message(() => positiveNumber(v))))
    expect([...said]).toEqual(['expected a whole number ≥ 1.'])
    expect(positiveNumber('4')).toBe(4)
  })

  it('--gpu and --retries take 0 and say one thing for anything else', () => {
    expect(wholeNumber('0')).toBe(0)
    const said = new Set(['abc', '-1', '1.5'].map((v) => message(() => wholeNumber(v))))
    expect([...said]).toEqual(['expected a whole number ≥ 0.'])
  })
})

describe('--max-output', () => {
  it('takes bytes, K and M, up to 3M', () => {
    expect(byteSize('4096')).toBe(4096)
    expect(byteSize('64K')).toBe(64 * 1024)
    expect(byteSize('2M')).toBe(2 * 1024 * 1024)
    expect(message(() => byteSize('lots'))).toMatch(/bytes, or a size like/)
    expect(message(() => byteSize('0'))).toMatch(/bytes, or a size like/)
    expect(message(() => byteSize('100M'))).toMatch(/at most 3M/)
  })
})
