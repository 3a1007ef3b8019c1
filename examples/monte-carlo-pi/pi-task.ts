/**
 * One task of the Monte Carlo estimate of pi: throw `samples` random points
 * into the unit square and count those inside the quarter circle. Each task
 * has its own seed, so the whole estimate is reproducible.
 */
export interface PiChunk {
  seed: number
  samples: number
}

export interface PiCount {
  inside: number
  samples: number
}

export function samplePi({ seed, samples }: PiChunk): PiCount {
  // xorshift32: fast, seedable, good enough for a demo (Math.random cannot be seeded).
  let s = seed >>> 0 || 0x9e3779b9
  const next = () => {
    s ^= s << 13
    s ^= s >>> 17
    s ^= s << 5
    return (s >>> 0) / 4294967296
  }
  let inside = 0
  for (let i = 0; i < samples; i++) {
    const x = next()
    const y = next()
    if (x * x + y * y <= 1) inside++
  }
  return { inside, samples }
}
