/**
 * The published package, as a user gets it: `npm pack` of this tree, installed into an empty
 * project on Node 22 and on Node 24 (both from the npm registry's `node` package), then
 * `gridnode --version`, a daemon, a `map` through the installed library, `gridnode status`, a
 * SIGTERM, and a TypeScript file importing 'gridnode' type-checked with the repo's TypeScript.
 * Every daemon runs with --exit-with-parent, so a runner that dies leaves none behind.
 */
import { execFileSync } from 'node:child_process'
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { afterAll, beforeAll, describe, expect, it } from 'vitest'
import {
  gridnode,
  type InstalledDaemon,
  installInto,
  type Packed,
  type Project,
  packWorkingTree,
  REPO,
  registryNode,
  startInstalled,
  stopInstalled,
  tempDir,
} from '../package/installed.ts'

const VERSION = JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version as string
const root = tempDir('package-test')
let packed: Packed
const daemons: InstalledDaemon[] = []

beforeAll(() => {
  packed = packWorkingTree(root)
}, 180_000)

afterAll(async () => {
  await Promise.all(daemons.map((d) => stopInstalled(d, 2_000)))
  rmSync(root, { recursive: true, force: true })
})

describe('npm pack', () => {
  it('holds built JavaScript, declarations, bin, README and LICENSE, and nothing else', () => {
    const f = packed.files
    for (const want of [
      'package.json',
      'README.md',
      'LICENSE',
      'bin/gridnode.js',
      'lib/index.js',
      'dist/gridnode.js',
      'dist/index.js',
      'dist/worker.js',
      'dist/types/client/index.d.ts',
      'dist/dashboard/index.html',
      'dist/dashboard/app.js',
      'dist/dashboard/app.css',
      'examples/monte-carlo-pi/pi-task.ts',
    ]) {
      expect(f).toContain(want)
    }
    const unexpected = f.filter(
      (p) =>
        !/^(package\.json|README\.md|LICENSE|bin\/gridnode\.js|lib\/index\.js)$/.test(p) &&
        !/^dist\/[^/]+\.js$/.test(p) &&
        !/^dist\/types\/.+\.d\.ts$/.test(p) &&
        // The dashboard page (dashboard/build.ts).
        !/^dist\/dashboard\/(index\.html|app\.js|app\.css)$/.test(p) &&
        p !== 'examples/monte-carlo-pi/pi-task.ts',
    )
    expect(unexpected).toEqual([])
    const pkg = JSON.parse(
      execFileSync('tar', ['xzOf', packed.tarball, 'package/package.json'], { encoding: 'utf8' }),
    )
    expect(Object.keys(pkg.dependencies)).toEqual(['esbuild'])
    console.log(
      `tarball ${(packed.bytes / 1024).toFixed(0)} KiB, ${f.length} files, pack ${Math.round(packed.ms)} ms`,
    )
  })
})

for (const major of [22, 24]) {
  describe(`installed on Node ${major}`, () => {
    let project: Project
    let daemon: InstalledDaemon

    beforeAll(async () => {
      const node = registryNode(major)
      project = installInto(packed.tarball, node, join(root, `node${major}`, 'project'))
      daemon = await startInstalled(project, join(root, `node${major}`, 'data'), ['--cpus', '2'])
      daemons.push(daemon)
    }, 360_000)

    it('runs that Node and prints the version', () => {
      expect(execFileSync(project.node, ['--version'], { encoding: 'utf8' })).toMatch(
        new RegExp(`^v${major}\\.`),
      )
      const r = gridnode(project, ['--version'])
      expect(r.stderr).toBe('')
      expect(r.stdout.trim()).toBe(VERSION)
    })

    it('starts a daemon that logs JSON to a pipe, and `gridnode status` reaches it', async () => {
      expect(daemon.ready.peerId).toMatch(/^12D3Koo/)
      // Log lines are buffered for up to 100 ms.
      for (let waited = 0; !daemon.stderr().includes('\n') && waited < 3000; waited += 20)
        await new Promise((r) => setTimeout(r, 20))
      const first = daemon.stderr().split('\n')[0]
      expect(() => JSON.parse(first)).not.toThrow()
      const r = gridnode(project, ['status', '--json', '--data-dir', daemon.dataDir])
      expect(r.code).toBe(0)
      const status = JSON.parse(r.stdout)
      expect(status.peerId).toBe(daemon.ready.peerId)
      expect(status.version).toBe(VERSION)
    })

    it('runs a map through the installed library (a task module with an import of its own)', () => {
      const dir = join(project.dir, 'app')
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'helper.mjs'), 'export const twice = (x) => 2 * x\n')
      writeFileSync(
        join(dir, 'task.mjs'),
        "import { twice } from './helper.mjs'\nexport function square(n) { return { n, sq: n * n, twice: twice(n) } }\n",
      )
      writeFileSync(
        join(dir, 'run.mjs'),
        [
          "import { connect, TaskError } from 'gridnode'",
          'const grid = await connect()',
          "const job = grid.map(new URL('./task.mjs', import.meta.url), 'square', [1, 2, 3, 4, 5])",
          'const results = await job.results()',
          'console.log(JSON.stringify({ results, taskError: typeof TaskError }))',
        ].join('\n'),
      )
      const out = execFileSync(project.node, [join(dir, 'run.mjs')], {
        cwd: dir,
        env: { ...process.env, GRIDNODE_HOME: daemon.dataDir, GRIDNODE_FROM_SOURCE: '' },
        encoding: 'utf8',
        timeout: 60_000,
      })
      const r = JSON.parse(out)
      expect(r.taskError).toBe('function')
      expect(r.results).toEqual([1, 2, 3, 4, 5].map((n) => ({ n, sq: n * n, twice: 2 * n })))
    })

    it('runs a function task with a file and an output: the process slot starts dist/sandbox-worker.js', () => {
      const dir = join(project.dir, 'files')
      mkdirSync(dir, { recursive: true })
      writeFileSync(join(dir, 'scene.txt'), 'a scene\n')
      writeFileSync(
        join(dir, 'render.mjs'),
        [
          "import { readFileSync, writeFileSync } from 'node:fs'",
          'export function render(f) {',
          "  const scene = readFileSync('scene.txt', 'utf8')",
          "  writeFileSync('frame-' + f + '.txt', scene + f + '\\n')",
          '  return { cwd: process.cwd(), scene }',
          '}',
        ].join('\n'),
      )
      writeFileSync(
        join(dir, 'run.mjs'),
        [
          "import { connect } from 'gridnode'",
          'const grid = await connect()',
          "const job = grid.map(new URL('./render.mjs', import.meta.url), 'render', ['1', '2'], {",
          "  files: [new URL('./scene.txt', import.meta.url).pathname],",
          "  outputs: ['frame-*.txt'],",
          "  outputDir: new URL('./out', import.meta.url).pathname,",
          '})',
          'console.log(JSON.stringify(await job.results()))',
        ].join('\n'),
      )
      const out = execFileSync(project.node, [join(dir, 'run.mjs')], {
        cwd: dir,
        env: { ...process.env, GRIDNODE_HOME: daemon.dataDir, GRIDNODE_FROM_SOURCE: '' },
        encoding: 'utf8',
        timeout: 60_000,
      })
      const results = JSON.parse(out) as Array<{ cwd: string; scene: string }>
      for (const r of results) {
        expect(r.scene).toBe('a scene\n')
        expect(r.cwd).toMatch(/[/]scratch[/]/)
      }
      for (const f of ['1', '2'])
        expect(readFileSync(join(dir, 'out', `frame-${f}.txt`), 'utf8')).toBe(`a scene\n${f}\n`)
    })

    it("type-checks a TypeScript file that imports 'gridnode' (and rejects a wrong call)", () => {
      const dir = join(project.dir, 'typed')
      mkdirSync(dir, { recursive: true })
      writeFileSync(
        join(dir, 'tsconfig.json'),
        JSON.stringify({
          compilerOptions: {
            target: 'es2022',
            module: 'nodenext',
            moduleResolution: 'nodenext',
            strict: true,
            noEmit: true,
            skipLibCheck: false,
            types: ['node'],
            typeRoots: [join(REPO, 'node_modules', '@types')],
          },
          files: ['check.ts'],
        }),
      )
      writeFileSync(join(dir, 'package.json'), JSON.stringify({ type: 'module', private: true }))
      writeFileSync(
        join(dir, 'check.ts'),
        [
          "import { connect, type Job, type Progress, TaskError } from 'gridnode'",
          'const grid = await connect({ timeoutMs: 1000 })',
          "const job: Job<number> = grid.map<number, number>(new URL('./task.mjs', import.meta.url), 'square', [1, 2])",
          'job.on("progress", (p: Progress) => console.log(p.done))',
          'for await (const r of job) console.log(r.index, r.error instanceof TaskError ? r.error.reason : r.value)',
          '// @ts-expect-error: dataDir is a string',
          'await connect({ dataDir: 42 })',
          '',
        ].join('\n'),
      )
      const tsc = join(REPO, 'node_modules', 'typescript', 'bin', 'tsc')
      let out = ''
      try {
        out = execFileSync(process.execPath, [tsc, '-p', dir], { cwd: project.dir, encoding: 'utf8' })
      } catch (err) {
        out = (err as { stdout?: string }).stdout ?? String(err)
      }
      expect(out).toBe('')
    })

    it('runs the demo (its task module ships with the package)', () => {
      const r = gridnode(project, ['demo', '--nodes', '2', '--tasks', '4', '--samples', '10000', '--json'])
      expect(r.stderr).toBe('')
      expect(r.code).toBe(0)
      expect(JSON.parse(r.stdout.trim().split('\n').pop()!).pi).toBeCloseTo(3.14, 0)
    })

    it('stops within 5 s of SIGTERM, exit code 0', async () => {
      const r = await stopInstalled(daemon)
      expect(r.code).toBe(0)
      expect(r.ms).toBeLessThan(5_000)
    })
  })
}
