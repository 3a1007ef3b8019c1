/**
 * `npm run bench -- fuzz [--seed=<n>] [--per-protocol=<n>]`: the fuzzers of
 * test/fuzz at length (200,000 messages per protocol by default), with the
 * seed printed so a failure replays with `--seed`. Throws on a broken property.
 */
import { CODECS, fuzzDecode } from '../test/fuzz/codecs.ts'
import { fuzzMembershipServer } from '../test/fuzz/membership.ts'
import { fuzzScheduler } from '../test/fuzz/scheduler.ts'
import { fuzzBlobServer, fuzzRpcServer, RPC_TARGETS, type ServerTally } from '../test/fuzz/servers.ts'
import { trapStrays } from '../test/fuzz/trap.ts'

/** `--name=<integer>` (run.ts takes bare words for bench names, so values ride on the flag). */
function flag(name: string): number | undefined {
  const arg = process.argv.find((a) => a.startsWith(`--${name}=`))
  if (arg === undefined) return undefined
  const n = Number(arg.slice(name.length + 3))
  if (!Number.isSafeInteger(n)) throw new Error(`--${name} wants an integer, got ${arg}`)
  return n
}

/** Frames per stream in the server runs; about half decode and are sent. */
const PER_STREAM = 40

export async function fuzzBench(): Promise<Record<string, number | string>> {
  const seed = flag('seed') ?? (Date.now() ^ (Math.random() * 0x7fffffff)) | 0
  const perProtocol = flag('per-protocol') ?? 200_000
  process.stdout.write(
    `  seed ${seed} (replay: npm run bench -- fuzz --seed=${seed} --per-protocol=${perProtocol})\n`,
  )
  const trap = trapStrays()
  trap.install()
  const out: Record<string, number | string> = { seed, perProtocol }
  const time = async <T>(label: string, count: (t: T) => number, run: () => T | Promise<T>) => {
    const started = performance.now()
    const t = await run()
    const s = (performance.now() - started) / 1000
    const n = count(t)
    out[`${label}_messages`] = n
    out[`${label}_perSec`] = Math.round(n / s)
    process.stdout.write(
      `  ${label.padEnd(22)} ${String(n).padStart(8)} messages  ${(n / s).toFixed(0).padStart(7)}/s\n`,
    )
    trap.check()
    return t
  }
  try {
    for (const [name, codec] of Object.entries(CODECS)) {
      await time(
        `decode_${name}`,
        (t) => t.accepted + t.rejected + Object.values(t.known).reduce((a, b) => a + b, 0),
        () => fuzzDecode(codec, { numRuns: perProtocol, seed }),
      )
    }
    // About 19 frames reach the server per stream of PER_STREAM samples (STREAM_MIX).
    const streams = Math.ceil(perProtocol / 19)
    const messages = (t: ServerTally) => t.messages
    for (const target of Object.values(RPC_TARGETS)) {
      await time(`server_${target.name}`, messages, () =>
        fuzzRpcServer(target, { numRuns: streams, perStream: PER_STREAM, seed }),
      )
    }
    await time('server_member', messages, () =>
      fuzzMembershipServer({ numRuns: streams, perStream: PER_STREAM, seed }),
    )
    // About 13 frames per run of up to 12 parallel streams.
    await time('server_blob', messages, () =>
      fuzzBlobServer({ numRuns: Math.ceil(perProtocol / 13), parallel: 12, seed }),
    )
    // About 20 peer messages per history of 40 steps.
    await time(
      'scheduler',
      (t) => t.messages,
      () => fuzzScheduler({ numRuns: Math.ceil(perProtocol / 20), steps: 40, seed }),
    )
  } finally {
    trap.uninstall()
  }
  return out
}
