/**
 * A render farm on gridnode: POV-Ray (Debian's `povray`) renders the frames
 * of a small animated scene across the mesh, and this machine assembles the
 * PNGs that come back into an animated PNG.
 *
 *   npx node examples/render-farm/main.ts [--frames 24] [--width 320] [--height 240] [--out farm.png] [--data-dir DIR]
 *
 * The scene directory is staged read-only into every task's working
 * directory (it crosses to each node once, by its sha256); each task renders
 * frame-<n>.png there, and `outputDir` brings the frames back as they finish.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { parseArgs } from 'node:util'
import { connect } from 'gridnode'
import { assembleApng } from './apng.ts'

const { values: args } = parseArgs({
  options: {
    frames: { type: 'string', default: '24' },
    width: { type: 'string', default: '320' },
    height: { type: 'string', default: '240' },
    out: { type: 'string', default: 'farm.png' },
    'frames-dir': { type: 'string', default: 'farm-frames' },
    'data-dir': { type: 'string' },
  },
})
const frames = Number(args.frames)
const scene = fileURLToPath(new URL('./scene', import.meta.url))
const framesDir = resolve(args['frames-dir'])
mkdirSync(framesDir, { recursive: true })

const started = performance.now()
const grid = await connect({ dataDir: args['data-dir'] })
const job = grid.run(
  [
    'povray',
    'scene/main.pov',
    '+Lscene',
    '+Oframe-{}.png',
    `+W${args.width}`,
    `+H${args.height}`,
    'Declare=F={}',
    `Declare=N=${frames}`,
    '+A0.3',
    '-D',
    '-V',
    '-GA',
  ],
  Array.from({ length: frames }, (_, i) => String(i)),
  { files: [scene], outputs: ['frame-*.png'], outputDir: framesDir, name: `render-farm ×${frames}` },
)
await job.results() // every frame rendered and written under framesDir (throws a summary if one failed)
const names = Array.from({ length: frames }, (_, i) => `frame-${i}.png`)
const apng = assembleApng(
  names.map((name) => ({ name, bytes: readFileSync(join(framesDir, name)) })),
  80,
)
writeFileSync(args.out, apng)
const nodes = new Set((await grid.results(await job.id)).map((r) => r.ranOn)).size
const s = ((performance.now() - started) / 1000).toFixed(1)
console.log(
  `wrote ${args.out}: ${frames} frames of ${args.width}x${args.height} from ${nodes} node${nodes === 1 ? '' : 's'} in ${s} s`,
)
