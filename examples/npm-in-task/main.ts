/**
 * Tasks whose imports travel with them: each task hashes a text with the npm
 * package multiformats, bundled into the task's code. Then two futures are
 * passed as arguments to a third task, which runs once both are done.
 *
 *   npx node examples/npm-in-task/main.ts [words...] [--data-dir DIR]
 */
import { parseArgs } from 'node:util'
import { connect } from 'gridnode'

const { values: args, positionals } = parseArgs({
  options: { 'data-dir': { type: 'string' } },
  allowPositionals: true,
})
const words = positionals.length > 0 ? positionals : ['gridnode', 'moves', 'tasks', 'to', 'idle', 'machines']
const task = new URL('./hash-task.ts', import.meta.url)

const grid = await connect({ dataDir: args['data-dir'] })
const cids = await grid.map<string, string>(task, 'cidOf', words).results()
for (const [i, w] of words.entries()) console.log(`${cids[i]}  ${w}`)

// Futures as arguments: `root` waits for `left` and `right`, wherever they run.
const left = grid.submit<string>(task, 'combine', [cids[0], cids[1]])
const right = grid.submit<string>(task, 'combine', [cids[2], cids[3]])
const root = await grid.submit<string>(task, 'combine', [left, right])
console.log(`${root}  root of the first four`)
