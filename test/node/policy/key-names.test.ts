/** `gridnode policy set`: the key names it lists are the ones the README and --help use; durations take bare ms. */
import { mkdtempSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { describe, expect, test } from 'vitest'
import { DEFAULT_POLICY, parsePolicyValue, policyKey, setPolicyKey } from '../../../src/node/policy/file.ts'

const README_KEYS =
  'function, command, gpu, network, sandbox, sandboxOwn, when, busyCpu, idleWindow, grace, maxCpuShare, hours, blobQuota, jobRetention'

function message(fn: () => unknown): string {
  try {
    fn()
  } catch (err) {
    return (err as Error).message
  }
  throw new Error('expected a refusal')
}

describe('policy key names', () => {
  test('an unknown key lists the names the README uses', () => {
    expect(message(() => policyKey('nokey'))).toBe(`unknown policy key "nokey" (known: ${README_KEYS})`)
  })

  test('the README names, their dashed forms and the policy.json names all work', () => {
    for (const name of ['idleWindow', 'idle-window', 'idleWindowMs'])
      expect(policyKey(name)).toBe('idleWindowMs')
    for (const name of ['grace', 'graceMs']) expect(policyKey(name)).toBe('graceMs')
    for (const name of ['jobRetention', 'job-retention', 'jobRetentionMs'])
      expect(policyKey(name)).toBe('jobRetentionMs')
  })

  test('a bad value is named as it was typed', () => {
    const d = mkdtempSync(join(tmpdir(), 'gridnode-policy-'))
    expect(message(() => setPolicyKey(d, DEFAULT_POLICY, 'idleWindow', 'soon'))).toMatch(
      /^idleWindow "soon": /,
    )
    expect(message(() => setPolicyKey(d, DEFAULT_POLICY, 'grace', '-1s'))).toMatch(/^grace "-1s": /)
  })
})

describe('policy durations', () => {
  test('a bare number is milliseconds, as a string from the CLI too', () => {
    expect(parsePolicyValue('idleWindowMs', '30000')).toBe(30_000)
    expect(parsePolicyValue('idleWindowMs', 30_000)).toBe(30_000)
    expect(parsePolicyValue('graceMs', '0')).toBe(0)
    expect(parsePolicyValue('jobRetentionMs', '86400000')).toBe(86_400_000)
  })

  test('the refusal gives the minimum and only examples that are allowed', () => {
    expect(message(() => parsePolicyValue('idleWindowMs', '500ms'))).toBe(
      'idleWindowMs "500ms": expected a duration of at least 1s: milliseconds, or like 30s, 2m, 12h',
    )
    expect(message(() => parsePolicyValue('jobRetentionMs', '30s'))).toBe(
      'jobRetentionMs "30s": expected a duration of at least 1m: milliseconds, or like 2m, 12h, 30d',
    )
    expect(message(() => parsePolicyValue('graceMs', 'soon'))).toBe(
      'graceMs "soon": expected a duration: milliseconds, or like 500ms, 30s, 2m',
    )
  })
})
