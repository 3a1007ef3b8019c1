// `import ... from 'gridnode'` lands here (package.json exports). Installed, it re-exports the
// built library (dist/index.js). In a git checkout without a build, the TypeScript sources
// (Node 22.18+/24 strips their types), so `npx node examples/...` works right after npm install.
// GRIDNODE_FROM_SOURCE=1 forces the sources, as for bin/gridnode.js. Plain JavaScript: Node
// refuses to strip types under node_modules. The names are listed so that this file keeps static
// named exports; test/package/shim.test.ts checks that the list matches src/client/index.ts.
import { existsSync } from 'node:fs'

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 13)) {
  throw new Error(`gridnode needs Node.js 22.13 or newer; this is ${process.version} (${process.execPath})`)
}
const built = new URL('../dist/index.js', import.meta.url)
const lib = await import(
  existsSync(built) && !process.env.GRIDNODE_FROM_SOURCE
    ? built.href
    : new URL('../src/client/index.ts', import.meta.url).href
)

export const {
  BadInputError,
  BadSubmitError,
  BundleBuildError,
  connect,
  DaemonClient,
  Future,
  Graph,
  formatProgress,
  Grid,
  GridnodeError,
  Job,
  JobCancelledError,
  JobFailedError,
  JobStreamLostError,
  ModuleNotFoundError,
  NoDaemonError,
  NoSuchJobError,
  OrError,
  orError,
  ProgressMeter,
  parseJsonLines,
  parsePlainLines,
  TaskError,
  toJsonSafe,
  UnserializableError,
} = lib
