/** One task of the Mandelbrot render: the RGB pixels of one tile of the image. */
export interface Tile {
  /** The tile's top-left pixel and size. */
  x: number
  y: number
  w: number
  h: number
  /** The whole image's size, and the part of the complex plane it shows. */
  width: number
  height: number
  centerRe: number
  centerIm: number
  /** Complex-plane units per pixel. */
  scale: number
  maxIter: number
}

export function renderTile(t: Tile): Uint8Array {
  const rgb = new Uint8Array(t.w * t.h * 3)
  for (let py = 0; py < t.h; py++) {
    const im = t.centerIm + (t.y + py - t.height / 2) * t.scale
    for (let px = 0; px < t.w; px++) {
      const re = t.centerRe + (t.x + px - t.width / 2) * t.scale
      const n = escapeTime(re, im, t.maxIter)
      const o = (py * t.w + px) * 3
      if (n >= t.maxIter) continue // inside the set: black
      // Smooth-ish palette from the escape time.
      const f = Math.sqrt(n / t.maxIter)
      rgb[o] = Math.round(255 * Math.min(1, 3 * f))
      rgb[o + 1] = Math.round(255 * Math.min(1, Math.max(0, 3 * f - 1)))
      rgb[o + 2] = Math.round(255 * Math.min(1, 0.3 + 0.7 * f))
    }
  }
  return rgb
}

function escapeTime(cr: number, ci: number, maxIter: number): number {
  let zr = 0
  let zi = 0
  let n = 0
  while (n < maxIter && zr * zr + zi * zi <= 4) {
    const t = zr * zr - zi * zi + cr
    zi = 2 * zr * zi + ci
    zr = t
    n++
  }
  return n
}
