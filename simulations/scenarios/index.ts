/** Every scenario `npm run sim -- <name>` knows, by name. */
import type { Scenario } from '../scenario.ts'
import { scenario as scale } from './scale.ts'
import { scenario as tiny } from './tiny.ts'

export const SCENARIOS: Record<string, Scenario> = Object.fromEntries([tiny, scale].map((s) => [s.name, s]))
