import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { resolveDataDir } from '../../domain/api-files.ts'
import { BadConfigError } from '../errors.ts'
import { defaultConfig, type NodeConfig, validateConfig } from './schema.ts'

/** Where the data dir is lives with the api.json contract the client reads (src/domain/api-files.ts). */
export { resolveDataDir }

export const CONFIG_FILE = 'config.json'

/** The data dir's config.json, or {} when there is none. Unknown keys are an error, so typos surface. */
export function readConfigFile(dataDir: string): Partial<NodeConfig> {
  const path = join(dataDir, CONFIG_FILE)
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return {}
    throw new BadConfigError(`cannot read ${path}: ${(err as Error).message}`)
  }
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (err) {
    throw new BadConfigError(`${path} is not valid JSON: ${(err as Error).message}`)
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) {
    throw new BadConfigError(`${path} must hold a JSON object`)
  }
  const known = Object.keys(defaultConfig(dataDir)).concat('cpus', 'certValidityMs')
  for (const key of Object.keys(parsed)) {
    if (key === 'dataDir' || !known.includes(key)) {
      throw new BadConfigError(
        `${path}: unknown setting "${key}" (known: ${known.filter((k) => k !== 'dataDir').join(', ')})`,
      )
    }
  }
  return parsed as Partial<NodeConfig>
}

/** defaults < config file < flags. Flags that were not given must be undefined, not defaults. */
export function mergeConfig(
  dataDir: string,
  file: Partial<NodeConfig>,
  flags: Partial<NodeConfig>,
): NodeConfig {
  const merged: NodeConfig = { ...defaultConfig(dataDir) }
  for (const layer of [file, flags]) {
    for (const [k, v] of Object.entries(layer)) {
      if (v !== undefined) (merged as unknown as Record<string, unknown>)[k] = v
    }
  }
  merged.dataDir = dataDir
  return validateConfig(merged)
}

export function loadConfig(flags: Partial<NodeConfig> & { dataDir?: string }): NodeConfig {
  const dataDir = resolveDataDir(flags.dataDir)
  return mergeConfig(dataDir, readConfigFile(dataDir), { ...flags, dataDir })
}
