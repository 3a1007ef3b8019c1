import { describe, expect, it } from 'vitest'
import { RemoteProtocolError } from '../../src/errors.ts'
import {
  arr,
  bool,
  bytes,
  literal,
  num,
  obj,
  oneOf,
  optional,
  record,
  refine,
  str,
  uint,
  variant,
} from '../../src/protocol/validate.ts'

function rejects(fn: () => unknown, message: RegExp): void {
  let thrown: unknown
  try {
    fn()
  } catch (err) {
    thrown = err
  }
  expect(thrown).toBeInstanceOf(RemoteProtocolError)
  expect((thrown as Error).message).toMatch(message)
}

describe('validate', () => {
  it('uint accepts non-negative safe integers up to max only', () => {
    expect(uint(10)(10, 'x')).toBe(10)
    expect(uint()(0, 'x')).toBe(0)
    for (const bad of [-1, 1.5, Number.NaN, Number.POSITIVE_INFINITY, 2 ** 53, '1', null, 10n]) {
      rejects(() => uint()(bad, 'a.b'), /^a\.b: /)
    }
    rejects(() => uint(10)(11, 'n'), /n: expected at most 10/)
  })

  it('num accepts finite numbers in range', () => {
    expect(num(0, 1)(0.5, 'x')).toBe(0.5)
    rejects(() => num(0, 1)(Number.NaN, 'x'), /finite/)
    rejects(() => num(0, 1)(-0.1, 'x'), /in \[0, 1\]/)
    rejects(() => num(0, 1)(Number.NEGATIVE_INFINITY, 'x'), /finite/)
  })

  it('str caps length, enforces min and pattern', () => {
    expect(str({ max: 3 })('abc', 's')).toBe('abc')
    rejects(() => str({ max: 3 })('abcd', 's'), /s: string longer than 3/)
    rejects(() => str({ max: 3, min: 1 })('', 's'), /non-empty/)
    rejects(() => str({ max: 3, pattern: /^a+$/ })('ab', 's'), /format/)
    rejects(() => str({ max: 3 })(3, 's'), /expected a string/)
  })

  it('bytes copies and caps', () => {
    const frame = new Uint8Array([1, 2, 3, 4])
    const view = frame.subarray(1, 3)
    const out = bytes(2)(view, 'b')
    expect(out).toEqual(new Uint8Array([2, 3]))
    expect(out.buffer).not.toBe(frame.buffer)
    rejects(() => bytes(1)(view, 'b'), /longer than 1/)
    rejects(() => bytes(10)('xx', 'b'), /expected bytes/)
    rejects(() => bytes(10)([1, 2], 'b'), /expected bytes/)
  })

  it('obj rebuilds with known keys only, rejects unknown and missing ones', () => {
    const check = obj({ a: uint(), b: optional(bool()) })
    const input = { a: 1 }
    const out = check(input, 'm')
    expect(out).toEqual({ a: 1 })
    expect(out).not.toBe(input)
    expect(check({ a: 1, b: true }, 'm')).toEqual({ a: 1, b: true })
    rejects(() => check({ a: 1, c: 2 }, 'm'), /m: unexpected field "c"/)
    rejects(() => check({}, 'm'), /m\.a: missing/)
    rejects(() => check({ a: 1, b: null }, 'm'), /m\.b: expected a boolean/)
    rejects(() => check([1], 'm'), /expected a map/)
    rejects(() => check(new Map([['a', 1]]), 'm'), /expected a map/)
    rejects(() => check(null, 'm'), /expected a map/)
  })

  it('obj is not fooled by __proto__ keys', () => {
    const check = obj({ a: uint() })
    const evil = JSON.parse('{"a":1,"__proto__":{"polluted":true}}')
    rejects(() => check(evil, 'm'), /unexpected field "__proto__"/)
  })

  it('arr caps the count and names the bad item', () => {
    expect(arr(uint(), 3)([1, 2, 3], 'xs')).toEqual([1, 2, 3])
    rejects(() => arr(uint(), 3)([1, 2, 3, 4], 'xs'), /xs: more than 3 items/)
    rejects(() => arr(uint(), 3)([1, -2], 'xs'), /xs\[1\]: /)
    rejects(() => arr(uint(), 3)({ length: 1 }, 'xs'), /expected an array/)
  })

  it('record, literal, oneOf, variant, refine', () => {
    expect(record(str({ max: 4 }), str({ max: 4 }), 2)({ A: 'b' }, 'env')).toEqual({ A: 'b' })
    rejects(
      () => record(str({ max: 4 }), str({ max: 4 }), 1)({ A: 'b', B: 'c' }, 'env'),
      /more than 1 entries/,
    )
    rejects(() => record(str({ max: 4 }), str({ max: 4 }), 2)({ A: 1 }, 'env'), /env\.A: expected a string/)
    rejects(() => literal(1)(2, 'v'), /v: expected 1/)
    rejects(() => oneOf('a', 'b')('c', 'k'), /one of a, b/)
    const u = variant<{ k: 'x'; n: number } | { k: 'y' }>('k', {
      x: obj({ k: literal('x'), n: uint() }),
      y: obj({ k: literal('y') }),
    })
    expect(u({ k: 'y' }, 'u')).toEqual({ k: 'y' })
    rejects(() => u({ k: 'z' }, 'u'), /u\.k: expected one of x, y/)
    rejects(() => u({ k: 'x' }, 'u'), /u\.n: missing/)
    const even = refine(uint(), (n, path) => {
      if (n % 2 !== 0) throw new RemoteProtocolError(`${path}: odd`)
    })
    rejects(() => even(3, 'e'), /e: odd/)
  })
})
