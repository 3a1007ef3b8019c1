/**
 * `npm run bench -- package`: the published package as a user gets it. Packs this tree, installs
 * the tarball into an empty project (npm on the Node running this bench), then times
 * `gridnode --version`, `gridnode status` (median of 7) and `gridnode start` to its ready line
 * (median of 3, a fresh data dir each: key generation included), and reads the idle daemon's
 * resident memory 5 s after ready (its file-backed part is mostly the node binary's own pages).
 * Targets (issue 13): status <= 0.15 s, start <= 0.5 s, idle RSS <= 100 MB.
 */
import { readFileSync, rmSync } from 'node:fs'
import { join } from 'node:path'
import { setTimeout as sleep } from 'node:timers/promises'
import {
  duMB,
  gridnode,
  installInto,
  packWorkingTree,
  rssMB,
  startInstalled,
  stopInstalled,
  tempDir,
} from '../test/package/installed.ts'

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]
const ms = (x: number): number => Math.round(x)

function memoryParts(pid: number): { anonMB: number; fileMB: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/status`, 'utf8')
    const kb = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+) kB`).exec(s)?.[1] ?? 0)
    return { anonMB: Math.round(kb('RssAnon') / 102.4) / 10, fileMB: Math.round(kb('RssFile') / 102.4) / 10 }
  } catch {
    return undefined
  }
}

export async function packageBench(): Promise<Record<string, number | string>> {
  const root = tempDir('bench-package')
  try {
    const packed = packWorkingTree(root)
    const project = installInto(packed.tarball, process.execPath, join(root, 'project'))
    const version = gridnode(project, ['--version'])
    const noDaemon = gridnode(project, ['status', '--data-dir', join(root, 'none')])
    const starts: number[] = []
    let figures: { rss?: number; anonMB?: number; fileMB?: number; status: number[]; stopMs: number } = {
      status: [],
      stopMs: 0,
    }
    for (let i = 0; i < 3; i++) {
      const d = await startInstalled(project, join(root, `data-${i}`), ['--cpus', '2'])
      starts.push(d.readyMs)
      if (i === 2) {
        await sleep(5_000)
        const parts = memoryParts(d.proc.pid!)
        const status: number[] = []
        for (let k = 0; k < 7; k++) status.push(gridnode(project, ['status', '--data-dir', d.dataDir]).ms)
        figures = { rss: rssMB(d.proc.pid!), ...parts, status, stopMs: 0 }
      }
      figures.stopMs = (await stopInstalled(d)).ms
    }
    return {
      tarballKiB: Math.round(packed.bytes / 1024),
      tarballFiles: packed.files.length,
      packMs: ms(packed.ms),
      installMs: ms(project.installMs),
      installedMB: duMB(join(project.dir, 'node_modules')),
      versionMs: ms(version.ms),
      statusNoDaemonMs: ms(noDaemon.ms),
      statusMs_median: ms(median(figures.status)),
      startToReadyMs_median: ms(median(starts)),
      idleRssMB: figures.rss ?? 'n/a',
      idleRssAnonMB: figures.anonMB ?? 'n/a',
      idleRssFileMB: figures.fileMB ?? 'n/a',
      sigtermExitMs: ms(figures.stopMs),
    }
  } finally {
    rmSync(root, { recursive: true, force: true })
  }
}
