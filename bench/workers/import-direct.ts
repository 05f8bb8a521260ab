import { createReadStream } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { basename, join } from 'node:path'
import { HeliaBackend } from '../../src/ipfs/helia-backend.ts'
import type { ImportProfileName } from '../../src/ipfs/import-profiles.ts'
import { ZipBundle } from '../../src/services/zip-bundle.ts'
import { peakRss } from './peak-rss.ts'

/**
 * The ceiling without HTTP: the same bytes straight into the embedded node
 * through the library (a zip's entries through ZipBundle). Prints {seconds, peakRss, cid}.
 */
const [file, profile = 'unixfs-v1-2025'] = process.argv.slice(2)
if (file === undefined) throw new Error('usage: import-direct.ts <file> [profile]')
const dir = await mkdtemp(join(tmpdir(), 'heimdall-bench-direct-'))
const backend = await HeliaBackend.open(dir)
try {
  const started = process.hrtime.bigint()
  let nodes
  if (file.endsWith('.zip')) {
    const bundle = await ZipBundle.open(file, { maxEntries: 1_000_000, maxUncompressedBytes: Number.MAX_SAFE_INTEGER, maxRatio: 1_000_000 })
    try {
      nodes = await backend.importTree(bundle.candidates(), { profile: profile as ImportProfileName })
    } finally {
      bundle.close()
    }
  } else {
    nodes = await backend.importTree([{ path: basename(file), content: createReadStream(file, { highWaterMark: 1024 * 1024 }) }], { profile: profile as ImportProfileName })
  }
  const seconds = Number(process.hrtime.bigint() - started) / 1e9
  console.log(JSON.stringify({ seconds, peakRss: peakRss(), cid: nodes.at(-1)?.cid.toString() }))
} finally {
  await backend.close()
  await rm(dir, { recursive: true, force: true })
}
