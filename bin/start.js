/**
 * What `npm start` runs: src/main.ts, with Node's compile cache on. Node 24
 * strips the TypeScript of every module it loads with a WebAssembly build of
 * amaro, which stays resident once loaded (~15–20 MB of the server's idle
 * memory, measured); the compile cache keeps each module's stripped source
 * and V8 code, so a start whose sources were compiled before (by an earlier
 * start of the same version) never loads amaro and parses less. The cache
 * must be on before the first .ts module is loaded, hence plain JavaScript
 * here. It lives in .cache/node-compile beside the sources, a folder of the
 * installation's owner; Node checks each entry against its source and
 * silently runs without a cache where it cannot write (NODE_COMPILE_CACHE,
 * if set, chooses another folder).
 */
import module from 'node:module'
import { dirname, join } from 'node:path'
import process from 'node:process'
import { fileURLToPath } from 'node:url'

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..')

module.enableCompileCache(process.env.NODE_COMPILE_CACHE ?? join(ROOT, '.cache', 'node-compile'))
// main.ts writes the cache out once the server listens.
await import('../src/main.ts')
