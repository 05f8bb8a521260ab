import { createHash } from 'node:crypto'
import { createReadStream } from 'node:fs'
import { peakRss } from './peak-rss.ts'

/** The floor: read the bytes once and hash them once. Prints {seconds, peakRss}. */
const [file] = process.argv.slice(2)
if (file === undefined) throw new Error('usage: sha256.ts <file>')
const started = process.hrtime.bigint()
const hash = createHash('sha256')
for await (const chunk of createReadStream(file, { highWaterMark: 1024 * 1024 })) hash.update(chunk as Buffer)
hash.digest()
console.log(JSON.stringify({ seconds: Number(process.hrtime.bigint() - started) / 1e9, peakRss: peakRss() }))
