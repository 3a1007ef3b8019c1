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
