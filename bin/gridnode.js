#!/usr/bin/env node
// Entry point of the `gridnode` command. Plain JavaScript so it can say
// clearly when the Node.js running it is too old, before anything else loads.
import { existsSync } from 'node:fs'

const [major] = process.versions.node.split('.').map(Number)
if (major < 22) {
  process.stderr.write(
    `gridnode needs Node.js 22 or newer; this is ${process.version} (${process.execPath}).\n` +
      'In a checkout, run it through npm (npm start, npx gridnode ...), which uses the Node 24 that npm install brings.\n',
  )
  process.exit(2)
}

const bundled = new URL('../dist/gridnode.js', import.meta.url)
const entry =
  existsSync(bundled) && !process.env.GRIDNODE_FROM_SOURCE
    ? bundled
    : new URL('../cli/main.ts', import.meta.url)
await import(entry.href)
