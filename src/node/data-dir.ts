/**
 * The data dir, Kubo style: one daemon per dir, guarded by a lock file.
 *
 *   repo.lock    pid of the daemon that owns the dir
 *   identity.key the libp2p private key (protobuf), mode 0600: same dir, same peer ID
 *   api.json     where the running daemon's control API listens, written once bound
 *   api.token    bearer token for the control API, mode 0600
 *   config.json  optional settings (flags win)
 *   swarm.key, mesh.json, mesh.key, membership.cert, revocations.json, invites.json, issued.json
 *                the private mesh's credentials (src/node/membership/files.ts)
 *   policy.json  who may run what here, and when (src/node/policy)
 *   jobs.db      the owner's job store (node:sqlite)
 *   blobs/       content-addressed code bundles, large values and input files (by SHA-256)
 *   scratch/     a working directory per running command or function task with files, removed after
 *   inputs/      read-only copies of input files in use, which tasks' staged links point at
 *   cwd/         the daemon's own working directory: empty and read-only, made afresh at each start
 */
import { randomBytes } from 'node:crypto'
import {
  chmodSync,
  closeSync,
  mkdirSync,
  openSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { join } from 'node:path'
import { generateKeyPair, privateKeyFromProtobuf, privateKeyToProtobuf } from '@libp2p/crypto/keys'
import type { PrivateKey } from '@libp2p/interface'
import { API_FILE, type ApiInfo, processAlive, TOKEN_FILE } from './api-files.ts'
import { DataDirLockedError } from './errors.ts'

// What clients read lives in api-files.ts (no libp2p there); re-exported for the daemon's side.
export { API_FILE, type ApiInfo, processAlive, readApiInfo, TOKEN_FILE } from './api-files.ts'

export const LOCK_FILE = 'repo.lock'
export const IDENTITY_FILE = 'identity.key'

export function ensureDataDir(dir: string): void {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
}

/** Takes the data dir's lock; a lock left by a dead process (kill -9) is taken over. Returns the release function. */
export function lockDataDir(dir: string): () => void {
  const path = join(dir, LOCK_FILE)
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fd = openSync(path, 'wx', 0o600)
      writeFileSync(fd, String(process.pid))
      closeSync(fd)
      return () => rmSync(path, { force: true })
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
      const pid = Number(readFileSync(path, 'utf8').trim())
      if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && processAlive(pid)) {
        throw new DataDirLockedError(dir, pid)
      }
      rmSync(path, { force: true })
    }
  }
  throw new DataDirLockedError(dir, -1)
}

/** The node's key if the data dir has one. */
export function readIdentity(dir: string): PrivateKey | undefined {
  const path = join(dir, IDENTITY_FILE)
  try {
    return privateKeyFromProtobuf(readFileSync(path))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined
    throw new Error(`cannot load the node identity from ${path}: ${(err as Error).message}`)
  }
}

/** A new Ed25519 node key, not yet written anywhere. */
export function newIdentity(): Promise<PrivateKey> {
  return generateKeyPair('Ed25519')
}

/** Loads the node's key, creating an Ed25519 key on first start. */
export async function loadIdentity(dir: string): Promise<PrivateKey> {
  const path = join(dir, IDENTITY_FILE)
  try {
    return privateKeyFromProtobuf(readFileSync(path))
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
      throw new Error(`cannot load the node identity from ${path}: ${(err as Error).message}`)
    }
  }
  const key = await generateKeyPair('Ed25519')
  writeFileAtomic(path, privateKeyToProtobuf(key), 0o600)
  return key
}

/** The API token: kept across restarts so scripts holding it keep working. */
export function loadOrCreateToken(dir: string): string {
  const path = join(dir, TOKEN_FILE)
  try {
    const token = readFileSync(path, 'utf8').trim()
    if (token.length >= 32) {
      chmodSync(path, 0o600)
      return token
    }
  } catch {
    // created below
  }
  const token = randomBytes(32).toString('base64url')
  writeFileAtomic(path, token, 0o600)
  return token
}

export function writeApiInfo(dir: string, info: ApiInfo): void {
  writeFileAtomic(join(dir, API_FILE), JSON.stringify(info), 0o600)
}

export function removeApiInfo(dir: string): void {
  rmSync(join(dir, API_FILE), { force: true })
}

function writeFileAtomic(path: string, data: string | Uint8Array, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`
  writeFileSync(tmp, data, { mode })
  chmodSync(tmp, mode)
  renameSync(tmp, path)
}
