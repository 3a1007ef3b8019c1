/** One seed, one record: the same seed gives the same JSON bit for bit; another seed does not. */
import { describe, expect, it } from 'vitest'
import { STRATEGIES } from '../../simulations/core/sim.ts'
import { scenario as faults } from '../../simulations/scenarios/faults.ts'
import { scenario as scale } from '../../simulations/scenarios/scale.ts'
import { run, withSpec } from './helpers.ts'

describe('determinism', () => {
  for (const strategy of STRATEGIES) {
    it(`${strategy}: the same seed gives the same record, faults and all`, () => {
      const a = JSON.stringify(run(faults, strategy, 7, 12).record)
      const b = JSON.stringify(run(faults, strategy, 7, 12).record)
      expect(a).toBe(b)
      const c = JSON.stringify(run(faults, strategy, 8, 12).record)
      expect(c).not.toBe(a)
    })
  }

  it('gridnode on a neighbourhood gossip graph is deterministic too', () => {
    const sparse = withSpec(scale, (s) => ({
      ...s,
      network: { ...s.network, gossip: { mode: 'neighbourhood', peers: 4, ownersToAll: true } },
    }))
    const small = (seed: number) => JSON.stringify(run(sparse, 'gridnode', seed, 12).record)
    expect(small(3)).toBe(small(3))
  })
})
