/** Reads the text behind `--inputs <file | ->`: a file, or all of stdin for `-`. */
import { readFile } from 'node:fs/promises'
import { EXIT, ExitError } from './output.ts'

export async function readInputText(spec: string): Promise<string> {
  if (spec === '-') {
    const chunks: Buffer[] = []
    for await (const c of process.stdin) chunks.push(c as Buffer)
    return Buffer.concat(chunks).toString('utf8')
  }
  try {
    return await readFile(spec, 'utf8')
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code
    const why =
      code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'it is a directory' : (err as Error).message
    throw new ExitError(EXIT.usage, `cannot read --inputs ${spec}: ${why}`)
  }
}
