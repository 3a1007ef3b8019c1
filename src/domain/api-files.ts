/**
 * The two data-dir files a client needs to reach the daemon (api.json: where its control API
 * listens; api.token: the bearer token), read and written here. No libp2p: the CLI's client
 * commands and the library import this, and start faster without it (src/node/data-dir.ts has
 * the rest of the data dir, identity keys included).
 */
import { readFileSync } from 'node:fs'
import { homedir } from 'node:os'
import { join, resolve } from 'node:path'

export const API_FILE = 'api.json'
export const TOKEN_FILE = 'api.token'

export interface ApiInfo {
  url: string
  pid: number
  peerId: string
}

/** What a client needs to reach the daemon of `dir`; undefined when the files are absent or unreadable. */
export function readApiInfo(dir: string): (ApiInfo & { token: string }) | undefined {
  try {
    const info = JSON.parse(readFileSync(join(dir, API_FILE), 'utf8')) as ApiInfo
    const token = readFileSync(join(dir, TOKEN_FILE), 'utf8').trim()
    if (typeof info.url !== 'string' || typeof info.pid !== 'number') return undefined
    return { ...info, token }
  } catch {
    return undefined
  }
}

/** Whether a process with this pid exists (one of another user's counts). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** The data dir: the flag, else $GRIDNODE_HOME, else ~/.gridnode (absolute). */
export function resolveDataDir(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const dir = flag ?? env.GRIDNODE_HOME ?? join(homedir(), '.gridnode')
  return resolve(dir)
}
