import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { describe, expect, it } from 'vitest'
import { entryPoints, rewriteDeclarationImports, toAscii } from '../../scripts/build.ts'
import { REPO } from './installed.ts'

describe("the package's entry points", () => {
  it("lib/index.js (what `import 'gridnode'` loads) exports exactly the library's names", async () => {
    const text = readFileSync(join(REPO, 'lib', 'index.js'), 'utf8')
    const listed = /export const \{([^}]*)\} = lib/
      .exec(text)![1]
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean)
    const source = await import('../../src/client/index.ts')
    expect([...listed].sort()).toEqual(Object.keys(source).sort())
  })

  it('builds the CLI, the library and every worker entry of the executor', () => {
    const e = entryPoints()
    expect(e.gridnode).toBe('cli/main.ts')
    expect(e.index).toBe('src/client/index.ts')
    expect(e.worker).toBe('src/executor/worker.ts')
    for (const name of Object.keys(e)) expect(name).not.toMatch(/^worker-(pool|slot|protocol)$/)
  })

  it('rewrites .ts imports of declarations to .js', () => {
    expect(
      rewriteDeclarationImports("export { a } from './grid.ts';\nimport type { B } from '../x/y.ts';"),
    ).toBe("export { a } from './grid.js';\nimport type { B } from '../x/y.js';")
    expect(rewriteDeclarationImports("type T = import('./job.ts').Job")).toBe(
      "type T = import('./job.js').Job",
    )
    expect(rewriteDeclarationImports("import 'node:events'")).toBe("import 'node:events'")
  })

  it('writes bundles as ASCII: non-ASCII characters become the same \\u escapes', () => {
    const text = "// a → b\nconst s = '💥é'\n"
    const ascii = toAscii(text)
    expect(ascii).not.toMatch(/[\u0080-\uffff]/)
    expect(ascii).toBe("// a \\u2192 b\nconst s = '\\ud83d\\udca5\\u00e9'\n")
    expect(new Function(`${ascii}; return s`)()).toBe('💥é')
  })

  it('the version is the one in package.json', async () => {
    const { VERSION } = await import('../../src/version.ts')
    expect(VERSION).toBe(JSON.parse(readFileSync(join(REPO, 'package.json'), 'utf8')).version)
  })
})
