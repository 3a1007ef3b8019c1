/**
 * The node's policy at run time: policy.json, the sandbox's availability and
 * the owner policy (idle, hours, CPU share) turned into the plain data the
 * scheduler takes (`NodePolicy`), checked every `checkMs` and pushed to the
 * driver whenever it changes. `set()` edits policy.json and applies it at once.
 */
import type { Accepts, Access, NodePolicy } from '../../scheduler/types.ts'
import type { Logger } from '../logger.ts'
import { type Allow, loadPolicy, type Policy, setPolicyKey } from './file.ts'
import { inHours, parseHours } from './hours.ts'
import { type Activity, IdleMonitor } from './idle.ts'

export interface PolicyTarget {
  setPolicy(p: NodePolicy): void
}

export interface ControllerOptions {
  dataDir: string
  slots: number
  log: Logger
  /** Whether tasks from other nodes can be accepted (the sandbox works, or the operator opted out); why not. */
  sandbox?: () => { acceptsForeign: boolean; reason?: string }
  monitor?: IdleMonitor
  /** Called after `set()` changed policy.json (the daemon re-runs housekeeping: a new quota applies at once). */
  onSet?: () => void
  /** How often the owner policy is re-evaluated (default 1000 ms). */
  checkMs?: number
  now?: () => Date
}

function access(a: Allow): Access {
  return a === 'all' ? { all: true, peers: [] } : { all: false, peers: [...a] }
}

export class PolicyController {
  policy: Policy
  readonly monitor: IdleMonitor
  private readonly opts: ControllerOptions
  private target?: PolicyTarget
  private timer?: NodeJS.Timeout
  private last = ''
  private activity: Activity = { busy: false, why: 'not measured' }
  private current?: NodePolicy

  constructor(opts: ControllerOptions) {
    this.opts = opts
    this.policy = loadPolicy(opts.dataDir)
    this.monitor = opts.monitor ?? new IdleMonitor()
  }

  start(target: PolicyTarget): void {
    this.target = target
    this.apply('start')
    this.timer = setInterval(() => this.apply('owner-policy'), this.opts.checkMs ?? 1000)
    this.timer.unref()
  }

  stop(): void {
    clearInterval(this.timer)
  }

  /** Sets one key in policy.json (validated, one-line errors) and applies it now. */
  set(key: string, value: unknown): Policy {
    this.policy = setPolicyKey(this.opts.dataDir, this.policy, key, value)
    this.opts.log.info({ key, value }, 'policy changed')
    this.apply('policy-set')
    this.opts.onSet?.()
    return this.policy
  }

  /** Start flags (`--when`, `--max-cpu-share`, `--hours`) are written to policy.json. */
  override(values: Record<string, unknown>): void {
    for (const [k, v] of Object.entries(values)) {
      if (v !== undefined) this.policy = setPolicyKey(this.opts.dataDir, this.policy, k, v)
    }
  }

  /** Re-evaluates and tells the driver if anything changed. */
  apply(cause: string): NodePolicy {
    const p = this.policy
    if (p.when === 'idle' || this.monitor.forced !== undefined)
      this.activity = this.monitor.check(p.idleWindowMs, p.busyCpu)
    else this.activity = { busy: false, why: 'when = always' }
    const next = this.compute()
    const sig = JSON.stringify(next)
    if (sig !== this.last) {
      this.last = sig
      this.current = next
      this.opts.log.info(
        { cause, foreignSlots: next.foreignSlots, suspended: next.suspended, why: this.activity.why },
        'policy in force',
      )
      this.target?.setPolicy(next)
    }
    return next
  }

  private compute(): NodePolicy {
    const p = this.policy
    const sandbox = this.opts.sandbox?.() ?? { acceptsForeign: true }
    const accepts: Accepts = {
      v: 1,
      foreign: sandbox.acceptsForeign,
      reason: sandbox.acceptsForeign ? '' : (sandbox.reason ?? 'no sandbox').slice(0, 256),
      function: access(p.function),
      command: access(p.command),
      gpu: access(p.gpu),
    }
    const hoursOk = inHours(parseHours(p.hours), this.opts.now?.() ?? new Date())
    const share = Math.max(1, Math.floor(this.opts.slots * p.maxCpuShare))
    const suspended = p.when === 'idle' && this.activity.busy
    return {
      accepts,
      foreignSlots: hoursOk && !suspended ? Math.min(this.opts.slots, share) : 0,
      suspended,
      handBackAfterMs: p.graceMs,
    }
  }

  /** For `gridnode policy show` and status. */
  view() {
    const now = this.current ?? this.compute()
    return {
      policy: this.policy,
      effective: {
        acceptsForeign: now.accepts.foreign,
        reason: now.accepts.reason,
        foreignSlots: now.foreignSlots,
        slots: this.opts.slots,
        suspended: now.suspended,
        inHours: inHours(parseHours(this.policy.hours), this.opts.now?.() ?? new Date()),
        activity: this.activity,
      },
    }
  }
}
