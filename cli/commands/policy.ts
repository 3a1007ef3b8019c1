/**
 * `gridnode policy show [--json]` and `gridnode policy set <key> <value>`:
 * the node's trust policy, owner policy and disk settings (policy.json),
 * read and changed through the control API and applied without a restart.
 */
import type { Command } from 'commander'
import { DaemonClient } from '../../src/client/daemon-client.ts'
import { type ClientFlags, printJson, shortId, table } from '../output.ts'

type Allow = 'all' | string[]

export interface PolicyView {
  policy: Record<string, unknown> & { function: Allow; command: Allow; gpu: Allow }
  effective: {
    acceptsForeign: boolean
    reason: string
    foreignSlots: number
    slots: number
    suspended: boolean
    inHours: boolean
    activity: { busy: boolean; why: string; cpuOutside?: number; inputIdleMs?: number }
  }
}

const KEYS_HELP = `keys:
  function, command, gpu   who may run such tasks here: all, none, or peer IDs (comma list)
  network                  tasks from other nodes may use the network: true | false (default false)
  sandbox                  auto | bwrap | none (takes effect at the next start)
  sandboxOwn               run this node's own tasks in the sandbox too: true | false
  when                     always | idle (lend the machine only while its user is idle)
  busyCpu                  with idle: busy above this share of CPU used outside gridnode (default 0.25)
  idleWindow               with idle: the sliding window, e.g. 30s
  grace                    suspended this long, tasks go back to their owners (default 2m)
  maxCpuShare              share of the slots other nodes may use, e.g. 0.5
  hours                    lend only in these hours, e.g. 19-07 (always = no limit)
  blobQuota                blob cache size, e.g. 10G
  jobRetention             keep finished job records this long, e.g. 30d`

function allowText(a: Allow): string {
  if (a === 'all') return 'all members'
  return a.length === 0 ? 'nobody else' : a.map(shortId).join(', ')
}

function duration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`
  if (ms % 60_000 === 0) return `${ms / 60_000}m`
  return ms % 1000 === 0 ? `${ms / 1000}s` : `${ms}ms`
}

function size(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB']
  let v = bytes
  let i = 0
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024
    i++
  }
  return `${Number.isInteger(v) ? v : v.toFixed(1)} ${units[i]}`
}

export function describePolicy(v: PolicyView): string {
  const p = v.policy as PolicyView['policy'] & Record<string, never>
  const e = v.effective
  const rows = [
    ['function tasks from', allowText(p.function)],
    ['command tasks from', allowText(p.command)],
    ['GPU tasks from', allowText(p.gpu)],
    ['network for tasks', p.network ? 'yes' : 'no'],
    ['sandbox', `${p.sandbox ?? '(daemon flag)'}${p.sandboxOwn ? ', own tasks too' : ''}`],
    [
      'when',
      `${p.when}${p.when === 'idle' ? ` (busy above ${Math.round(p.busyCpu * 100)}% CPU over ${duration(p.idleWindowMs)})` : ''}`,
    ],
    ['hand back after', duration(p.graceMs)],
    ['max CPU share', String(p.maxCpuShare)],
    ['hours', p.hours === '' ? 'always' : p.hours],
    ['blob quota', size(p.blobQuota)],
    ['job retention', duration(p.jobRetentionMs)],
  ]
  const now = !e.acceptsForeign
    ? `takes no tasks from other nodes: ${e.reason}`
    : e.suspended
      ? `suspended: the machine is in use (${e.activity.why})`
      : !e.inHours
        ? 'outside lending hours: lends no slots'
        : `lends ${e.foreignSlots} of ${e.slots} slots`
  return `${table(rows)}\nnow: ${now}`
}

export function registerPolicy(program: Command): void {
  const policy = program
    .command('policy')
    .description("this node's trust policy, owner policy and disk settings (policy.json)")
    .addHelpText('after', `\n${KEYS_HELP}`)
  policy
    .command('show')
    .description('print the policy and what is in force now')
    .option('--data-dir <dir>', 'which local daemon to ask (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print one JSON object')
    .action(async (opts: ClientFlags) => {
      const v = await DaemonClient.open(opts).request<PolicyView>('GET', '/v1/policy')
      if (opts.json) return printJson(v)
      process.stdout.write(`${describePolicy(v)}\n`)
    })
  policy
    .command('set')
    .description('change one key; applied at once, without a restart')
    .argument('<key>', 'a policy key (gridnode policy --help lists them)')
    .argument('<value>', 'its new value')
    .option('--data-dir <dir>', 'which local daemon to ask (default $GRIDNODE_HOME or ~/.gridnode)')
    .option('--json', 'print the new policy as one JSON object')
    .addHelpText('after', `\n${KEYS_HELP}`)
    .action(async (key: string, value: string, opts: ClientFlags) => {
      const v = await DaemonClient.open(opts).request<PolicyView>('POST', '/v1/policy', { key, value })
      if (opts.json) return printJson(v)
      process.stdout.write(`${describePolicy(v)}\n`)
    })
}
