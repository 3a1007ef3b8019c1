/**
 * The Node version `engines` asks for is the one the entry point refuses below (a new-user trial:
 * `engines` said >=22, so npm installed on Node 22.0-22.12 without a word, and gridnode then
 * refused to run there).
 */
import { readFileSync } from 'node:fs'
import { describe, expect, it } from 'vitest'

describe('engines', () => {
  it('names the oldest Node the entry point runs on', () => {
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8'))
    const bin = readFileSync(new URL('../../bin/gridnode.js', import.meta.url), 'utf8')
    const needed = /tooOld\('(\d+\.\d+)'\)/.exec(
      bin.split('\n').find((l) => l.includes('major < 22')) ?? '',
    )?.[1]
    expect(needed).toBeDefined()
    expect(pkg.engines.node).toBe(`>=${needed}`)
  })
})
