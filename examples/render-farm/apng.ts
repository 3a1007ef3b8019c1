/**
 * Assembles PNG frames of one size and pixel format into an animated PNG
 * (APNG) without decoding them: the first frame's IDAT chunks stay as they
 * are, every later frame's become fdAT chunks, each frame behind an fcTL.
 * Browsers and most viewers play APNG; others show the first frame.
 */
const SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1
  return c >>> 0
})

function crc32(buf: Buffer): number {
  let c = 0xffffffff
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 0xff] ^ (c >>> 8)
  return (c ^ 0xffffffff) >>> 0
}

function chunk(type: string, data: Buffer): Buffer {
  const head = Buffer.alloc(8)
  head.writeUInt32BE(data.length, 0)
  head.write(type, 4, 'ascii')
  const crc = Buffer.alloc(4)
  crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])), 0)
  return Buffer.concat([head, data, crc])
}

interface Png {
  ihdr: Buffer
  idat: Buffer[]
}

function parse(png: Buffer, name: string): Png {
  if (!png.subarray(0, 8).equals(SIGNATURE)) throw new Error(`${name} is not a PNG`)
  let ihdr: Buffer | undefined
  const idat: Buffer[] = []
  for (let at = 8; at < png.length; ) {
    const len = png.readUInt32BE(at)
    const type = png.toString('ascii', at + 4, at + 8)
    const data = png.subarray(at + 8, at + 8 + len)
    if (type === 'IHDR') ihdr = Buffer.from(data)
    else if (type === 'IDAT') idat.push(data)
    at += 12 + len
  }
  if (ihdr === undefined || idat.length === 0) throw new Error(`${name} has no IHDR or IDAT`)
  return { ihdr, idat }
}

/** An APNG of `frames` (PNG files' bytes), `delayMs` each, looping forever. */
export function assembleApng(frames: Array<{ name: string; bytes: Buffer }>, delayMs = 100): Buffer {
  if (frames.length === 0) throw new Error('no frames')
  const pngs = frames.map((f) => parse(f.bytes, f.name))
  const ihdr = pngs[0].ihdr
  pngs.forEach((p, i) => {
    if (!p.ihdr.equals(ihdr))
      throw new Error(`${frames[i].name}: size or pixel format differs from the first frame`)
  })
  const width = ihdr.readUInt32BE(0)
  const height = ihdr.readUInt32BE(4)
  const actl = Buffer.alloc(8)
  actl.writeUInt32BE(pngs.length, 0)
  actl.writeUInt32BE(0, 4) // loop forever
  const parts: Buffer[] = [SIGNATURE, chunk('IHDR', ihdr), chunk('acTL', actl)]
  let seq = 0
  pngs.forEach((p, i) => {
    const fctl = Buffer.alloc(26)
    fctl.writeUInt32BE(seq++, 0)
    fctl.writeUInt32BE(width, 4)
    fctl.writeUInt32BE(height, 8)
    fctl.writeUInt32BE(0, 12)
    fctl.writeUInt32BE(0, 16)
    fctl.writeUInt16BE(delayMs, 20)
    fctl.writeUInt16BE(1000, 22)
    fctl[24] = 0 // dispose: none
    fctl[25] = 0 // blend: source
    parts.push(chunk('fcTL', fctl))
    for (const data of p.idat) {
      if (i === 0) parts.push(chunk('IDAT', data))
      else {
        const seqBuf = Buffer.alloc(4)
        seqBuf.writeUInt32BE(seq++, 0)
        parts.push(chunk('fdAT', Buffer.concat([seqBuf, data])))
      }
    }
  })
  parts.push(chunk('IEND', Buffer.alloc(0)))
  return Buffer.concat(parts)
}
