#!/usr/bin/env node
// Entry point of the `gridnode` command. Plain JavaScript so it can say
// clearly when the Node.js running it is too old, before anything else loads.
//
// Which code it runs:
//  - the installed package (npm install -g gridnode, npx gridnode): the bundles in dist/, the only
//    code the package ships;
//  - a git checkout: the TypeScript sources (cli/main.ts), or dist/ once `npm run build` made it;
//    GRIDNODE_FROM_SOURCE=1 forces the sources.
import { existsSync } from 'node:fs'

const [major, minor] = process.versions.node.split('.').map(Number)
const bundled = new URL('../dist/gridnode.js', import.meta.url)
const sources = new URL('../cli/main.ts', import.meta.url)
const hasSources = existsSync(sources)
const useSources = hasSources && (Boolean(process.env.GRIDNODE_FROM_SOURCE) || !existsSync(bundled))

function tooOld(need) {
  process.stderr.write(
    `gridnode needs Node.js ${need} or newer; this is ${process.version} (${process.execPath}).\n` +
      (hasSources
        ? 'In a checkout, run it through npm (npm start, npx gridnode ...), which uses the Node 24 that npm install brings.\n'
        : 'Install a current Node.js (22 or 24 LTS, https://nodejs.org), then run gridnode again.\n'),
  )
  process.exit(2)
}

// node:sqlite (the job store) needs no flag from 22.13 on.
if (major < 22 || (major === 22 && minor < 13)) tooOld('22.13')
// Running .ts sources needs type stripping without a flag (Node 22.18+, 23.6+, 24).
if (useSources && !process.features.typescript) tooOld('22.18 (to run from TypeScript sources)')
if (!useSources && !existsSync(bundled)) {
  process.stderr.write(
    `gridnode: ${bundled.pathname} is missing; reinstall gridnode (npm install -g gridnode).\n`,
  )
  process.exit(1)
}

// `gridnode start` runs the daemon with a young generation of a fixed 16 MB. Left to grow and shrink
// with the load, V8's young generation was 8-13% of a busy daemon's CPU in page faults (perf, 4
// daemons x 1 slot of no-ops on 2 cores); fixed, the faults halved and the no-op rate went from
// 7.8-10.9k to 11.2-12.4k tasks/s in four interleaved pairs (README, Performance). Heap sizes are
// fixed when Node starts, so the process replaces itself (execve: same pid, same stdio, signals
// and exit codes as before) with the flags added, once. Flags given by the user win; without
// execve (Node before 22.15, Windows) the daemon runs as it is.
const DAEMON_NODE_FLAGS = ['--min-semi-space-size=16', '--max-semi-space-size=16']
if (
  process.argv.slice(2).find((a) => !a.startsWith('-')) === 'start' &&
  typeof process.execve === 'function' &&
  !process.execArgv.some((a) => a.includes('semi-space-size')) &&
  !/semi-space-size/.test(process.env.NODE_OPTIONS ?? '')
) {
  process.execve(
    process.execPath,
    [process.execPath, ...DAEMON_NODE_FLAGS, ...process.execArgv, ...process.argv.slice(1)],
    process.env,
  )
}

// Node 22 flags node:sqlite (the job store) as experimental on every start; that line would land
// among the daemon's logs. Other warnings pass.
const emitWarning = process.emitWarning
process.emitWarning = function (warning, ...rest) {
  const text = typeof warning === 'string' ? warning : warning?.message
  const type = typeof rest[0] === 'string' ? rest[0] : rest[0]?.type
  if (type === 'ExperimentalWarning' && /^SQLite\b/.test(String(text))) return
  return emitWarning.call(this, warning, ...rest)
}

await import((useSources ? sources : bundled).href)
