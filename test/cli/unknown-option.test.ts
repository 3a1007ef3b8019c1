/** Usage errors of the command line: a typo'd option is named as unknown (with a suggestion), groups without a subcommand exit 2. */
import { describe, expect, it } from 'vitest'
import { runCli } from '../integration/harness.ts'

describe('gridnode map with a typo for --inputs', () => {
  it('says the option is unknown and suggests --inputs, exit 2', async () => {
    const r = await runCli(['map', 'work.mjs', '--input', '-'], '1\n')
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("error: unknown option '--input'\n(Did you mean --inputs?)")
    expect(r.stderr).not.toContain('required option')
  })

  it('still says --inputs is required when it is only missing, exit 2', async () => {
    const r = await runCli(['map', 'work.mjs'], '')
    expect(r.code).toBe(2)
    expect(r.stderr).toContain("error: required option '--inputs <file|->' not specified")
  })
})

describe('a command group without its subcommand', () => {
  it.each(['policy', 'service'])('gridnode %s prints its help on stderr and exits 2', async (group) => {
    const r = await runCli([group], '')
    expect(r.code).toBe(2)
    expect(r.stdout).toBe('')
    expect(r.stderr).toMatch(new RegExp(`^Usage: gridnode ${group} \\[options\\] \\[command\\]`))
  })
})
