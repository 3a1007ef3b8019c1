/**
 * What read-only input staging costs outside the sandbox (issue 14): one 200 MB
 * input staged for 200 tasks on one node. The first task makes the node's
 * shadow copy (a reflink where the file system has them, else a full copy,
 * hashed against the blob's name); every task after links it and checks it
 * after the run (stats under the shadow's lock). `reflink` says whether this
 * file system cloned (COPYFILE_FICLONE_FORCE on the data dir).
 */

import { constants } from 'node:fs'
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { BlobStore } from '../src/executor/blob-store.ts'
import { shadowStats, stageInputs } from '../src/executor/files.ts'

const MB = 200
const TASKS = 200

export async function stagingBench(): Promise<Record<string, number | string>> {
  const dir = await mkdtemp(join(tmpdir(), 'gridnode-bench-staging-'))
  try {
    const blobs = await BlobStore.open(dir)
    await writeFile(join(dir, 'src'), Buffer.alloc(MB * 1024 * 1024, 7))
    const { sha256 } = await blobs.importFile(join(dir, 'src'))
    let reflink = 'yes'
    await copyFile(blobs.pathOf(sha256), join(dir, 'probe'), constants.COPYFILE_FICLONE_FORCE).catch(() => {
      reflink = 'no'
    })
    await rm(join(dir, 'src'), { force: true })
    await rm(join(dir, 'probe'), { force: true })
    const inputs = [{ path: 'big.bin', source: blobs.pathOf(sha256), mode: 0o644 }]
    const shadows = join(dir, 'inputs')
    const hashedBefore = shadowStats.hashed
    let t = performance.now()
    const first = await stageInputs(join(dir, 'scratch', 't0'), inputs, shadows)
    const firstMs = performance.now() - t
    t = performance.now()
    for (let i = 1; i <= TASKS; i++) {
      const s = await stageInputs(join(dir, 'scratch', `t${i}`), inputs, shadows)
      await s.check()
    }
    const perTaskMs = (performance.now() - t) / TASKS
    await first.check()
    return {
      reflink,
      [`firstStageMs_${MB}MB`]: Math.round(firstMs),
      [`stageAndCheckMsPerTask_${MB}MB`]: Number(perTaskMs.toFixed(3)),
      hashedAfterFirst: shadowStats.hashed - hashedBefore,
    }
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}
