/**
 * Bundles the browser code (web/: TypeScript and three.js from npm, and the
 * stylesheet) into public/build/ under content-hashed names, and writes
 * manifest.json mapping each logical name to its file. Nothing it writes is
 * committed; npm start, the test setup and the Docker build run it.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises'
import { basename, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
export const BUILD_DIR = join(ROOT, 'public/build')

export async function buildWeb (): Promise<Record<string, string>> {
  await rm(BUILD_DIR, { recursive: true, force: true })
  await mkdir(BUILD_DIR, { recursive: true })
  const result = await build({
    entryPoints: ['app.ts', 'preview.ts', 'styles.css'].map((entry) => join(ROOT, 'web', entry)),
    bundle: true,
    format: 'esm',
    splitting: true,
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    outdir: BUILD_DIR,
    entryNames: '[name]-[hash]',
    chunkNames: 'chunk-[hash]',
    metafile: true,
    logLevel: 'warning'
  })
  const manifest: Record<string, string> = {}
  for (const [output, meta] of Object.entries(result.metafile.outputs)) {
    if (meta.entryPoint === undefined || output.endsWith('.map')) continue
    const logical = basename(meta.entryPoint).replace(/\.ts$/, '.js')
    manifest[logical] = relative(BUILD_DIR, join(ROOT, output))
  }
  await writeFile(join(BUILD_DIR, 'manifest.json'), JSON.stringify(manifest, null, 2))
  return manifest
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const manifest = await buildWeb()
  console.log(`web assets built: ${Object.values(manifest).join(', ')}`)
}
