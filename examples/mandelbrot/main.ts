/**
 * A Mandelbrot render split into tiles, one task each, assembled into a PNG:
 *
 *   npx node examples/mandelbrot/main.ts [--out mandelbrot.png] [--width 800] [--height 600]
 *                                    [--tile 100] [--max-iter 500] [--data-dir DIR]
 */
import { writeFileSync } from 'node:fs'
import { parseArgs } from 'node:util'
import { connect } from 'gridnode'
import { encodePng } from './png.ts'
import type { Tile } from './tile.ts'

const { values: args } = parseArgs({
  options: {
    out: { type: 'string', default: 'mandelbrot.png' },
    width: { type: 'string', default: '800' },
    height: { type: 'string', default: '600' },
    tile: { type: 'string', default: '100' },
    'max-iter': { type: 'string', default: '500' },
    'data-dir': { type: 'string' },
  },
})
const width = Number(args.width)
const height = Number(args.height)
const size = Number(args.tile)

const tiles: Tile[] = []
for (let y = 0; y < height; y += size) {
  for (let x = 0; x < width; x += size) {
    tiles.push({
      x,
      y,
      w: Math.min(size, width - x),
      h: Math.min(size, height - y),
      width,
      height,
      centerRe: -0.65,
      centerIm: 0,
      scale: 3.2 / width,
      maxIter: Number(args['max-iter']),
    })
  }
}

const grid = await connect({ dataDir: args['data-dir'] })
const started = performance.now()
const job = grid.map<Tile, Uint8Array>(new URL('./tile.ts', import.meta.url), 'renderTile', tiles)
const image = new Uint8Array(width * height * 3)
// Tiles arrive as they finish, in any order; each knows where it goes.
for await (const r of job) {
  if (r.error) throw r.error
  const t = tiles[r.index]
  for (let row = 0; row < t.h; row++) {
    image.set(r.value.subarray(row * t.w * 3, (row + 1) * t.w * 3), ((t.y + row) * width + t.x) * 3)
  }
}
writeFileSync(args.out, encodePng(width, height, image))
const seconds = ((performance.now() - started) / 1000).toFixed(2)
console.log(`wrote ${args.out}: ${width}x${height}, ${tiles.length} tiles in ${seconds} s`)
