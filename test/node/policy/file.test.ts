import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, describe, expect, test } from 'vitest'
import {
  DEFAULT_POLICY,
  loadPolicy,
  parsePolicyValue,
  policyKey,
  setPolicyKey,
} from '../../../src/node/policy/file.ts'
import { inHours, parseHours } from '../../../src/node/policy/hours.ts'

const PEER = '12D3KooWEGVRPZnhYFNYSjZHXpwyJVqonE9VFQneEtNsKBqYZ1of'
const dirs: string[] = []
function dir(): string {
  const d = mkdtempSync(join(tmpdir(), 'gn-policy-'))
  dirs.push(d)
  return d
}
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true })
})

describe('policy values', () => {
  test('parsed from CLI strings', () => {
    expect(parsePolicyValue('command', 'all')).toBe('all')
    expect(parsePolicyValue('command', 'none')).toEqual([])
    expect(parsePolicyValue('command', `${PEER}, ${PEER}`)).toEqual([PEER])
    expect(parsePolicyValue('network', 'true')).toBe(true)
    expect(parsePolicyValue('when', 'idle')).toBe('idle')
    expect(parsePolicyValue('maxCpuShare', '0.5')).toBe(0.5)
    expect(parsePolicyValue('graceMs', '2m')).toBe(120_000)
    expect(parsePolicyValue('blobQuota', '10G')).toBe(10 * 1024 ** 3)
    expect(parsePolicyValue('jobRetentionMs', '30d')).toBe(30 * 86_400_000)
    expect(parsePolicyValue('hours', '19-07')).toBe('19-07')
    expect(parsePolicyValue('hours', 'always')).toBe('')
    expect(policyKey('max-cpu-share')).toBe('maxCpuShare')
    expect(policyKey('grace')).toBe('graceMs')
  })

  test.each([
    ['command', 'bob', /^command "bob": expected "all", "none" or a comma list of peer IDs/],
    ['network', 'maybe', /^network "maybe": expected true or false$/],
    ['when', 'sometimes', /^when "sometimes": expected one of always, idle$/],
    ['maxCpuShare', '0', /^maxCpuShare "0": expected a fraction above 0 to 1/],
    ['maxCpuShare', '1.5', /^maxCpuShare "1.5": expected a fraction/],
    ['graceMs', 'soon', /^graceMs "soon": expected a duration/],
    ['blobQuota', 'lots', /^blobQuota "lots": expected bytes, or a size like 500M or 10G$/],
    ['hours', '25-07', /^hours "25-07": expected windows like 19-07/],
    ['sandbox', 'docker', /^sandbox "docker": expected one of auto, bwrap, none$/],
  ] as const)('%s %s is refused with one line', (key, value, message) => {
    expect(() => parsePolicyValue(key, value)).toThrow(message)
    try {
      parsePolicyValue(key, value)
    } catch (err) {
      expect((err as Error).message).not.toContain('\n')
      expect((err as { code: string }).code).toBe('GN_BAD_POLICY')
    }
  })

  test('unknown keys', () => {
    expect(() => policyKey('colour')).toThrow(/^unknown policy key "colour" \(known: function, command/)
  })
})

describe('policy.json', () => {
  test('defaults without a file; set writes it 0600 and it loads back', () => {
    const d = dir()
    expect(loadPolicy(d)).toEqual(DEFAULT_POLICY)
    const p = setPolicyKey(d, loadPolicy(d), 'command', PEER)
    expect(p.command).toEqual([PEER])
    expect(statSync(join(d, 'policy.json')).mode & 0o777).toBe(0o600)
    expect(loadPolicy(d)).toEqual(p)
    expect(JSON.parse(readFileSync(join(d, 'policy.json'), 'utf8')).command).toEqual([PEER])
  })

  test('a bad file names the file and the key', () => {
    const d = dir()
    writeFileSync(join(d, 'policy.json'), JSON.stringify({ when: 'never' }))
    expect(() => loadPolicy(d)).toThrow(/policy\.json: when "never": expected one of always, idle/)
    writeFileSync(join(d, 'policy.json'), JSON.stringify({ colour: 1 }))
    expect(() => loadPolicy(d)).toThrow(/unknown policy key "colour"/)
    writeFileSync(join(d, 'policy.json'), '{')
    expect(() => loadPolicy(d)).toThrow(/is not valid JSON/)
  })
})

describe('hours', () => {
  const at = (h: number, m = 0) => new Date(2026, 0, 1, h, m)
  test('windows across midnight and lists', () => {
    const w = parseHours('19-07')
    expect(inHours(w, at(20))).toBe(true)
    expect(inHours(w, at(3))).toBe(true)
    expect(inHours(w, at(7))).toBe(false)
    expect(inHours(w, at(12))).toBe(false)
    const two = parseHours('12:00-13:30,19-07')
    expect(inHours(two, at(13, 29))).toBe(true)
    expect(inHours(two, at(13, 30))).toBe(false)
    expect(inHours(parseHours(''), at(12))).toBe(true)
    expect(() => parseHours('7')).toThrow(/expected windows/)
    expect(() => parseHours('07-07')).toThrow(/expected windows/)
  })
})
