/**
 * Removing what a task left behind, however it left it. Node's `fs.rm` gives
 * up (and `force` does not help) on two things a task can make in its own
 * directory: folders without read or execute permission (`chmod 0`, EACCES
 * for a daemon that is not root) and trees nested past PATH_MAX (ENAMETOOLONG:
 * `fs.rm` walks full paths). Both left their bytes on disk for good, and a
 * sandbox base dir that could not be emptied at start turned the sandbox off
 * until someone cleaned up by hand. Here, when `fs.rm` fails, coreutils do it
 * (they walk a tree relative to each folder): `chmod -R u+rwx`, which never
 * follows a symbolic link it meets inside the tree, then `rm -rf`.
 */
import { spawn, spawnSync } from 'node:child_process'
import { existsSync, rmSync } from 'node:fs'
import { rm } from 'node:fs/promises'

/** Removes `path` and everything under it; throws only if it is still there afterwards. */
export async function removeTree(path: string): Promise<void> {
  try {
    await rm(path, { recursive: true, force: true })
    return
  } catch (err) {
    await run('chmod', ['-R', 'u+rwx', '--', path])
    await run('rm', ['-rf', '--', path])
    if (existsSync(path)) throw new Error(`cannot remove ${path}: ${(err as Error).message}`)
  }
}

/** removeTree, blocking (at start, before anything runs). */
export function removeTreeSync(path: string): void {
  try {
    rmSync(path, { recursive: true, force: true })
  } catch (err) {
    spawnSync('chmod', ['-R', 'u+rwx', '--', path], { stdio: 'ignore' })
    spawnSync('rm', ['-rf', '--', path], { stdio: 'ignore' })
    if (existsSync(path)) throw new Error(`cannot remove ${path}: ${(err as Error).message}`)
  }
}

/** Runs a coreutils command to its end; its exit status is not the verdict (what is left is). */
function run(command: string, args: string[]): Promise<void> {
  return new Promise((resolve) => {
    const child = spawn(command, args, { stdio: 'ignore' })
    child.once('error', () => resolve())
    child.once('close', () => resolve())
  })
}
