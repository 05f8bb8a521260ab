/**
 * Bundles the browser code (web/: TypeScript and three.js from npm, and the
 * stylesheet) into public/build/ under content-hashed names, and writes
 * manifest.json mapping each logical name to its file. Nothing it writes is
 * committed; npm start, the test setup and the Docker build run it.
 *
 * esbuild and three.js are dev dependencies: a production install
 * (`npm ci --omit=dev`) has neither, so there `npm start` keeps the assets a
 * full install built before (as the Docker image does) and refuses to start
 * without them.
 */
import { createHash } from 'node:crypto'
import { existsSync } from 'node:fs'
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
export const BUILD_DIR = join(ROOT, 'public/build')
/** What the last build was built from (see inputsDigest). */
const INPUTS_FILE = join(BUILD_DIR, 'inputs.json')

export async function buildWeb (): Promise<Record<string, string>> {
  await rm(BUILD_DIR, { recursive: true, force: true })
  await mkdir(BUILD_DIR, { recursive: true })
  const { build } = await import('esbuild')
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
    logLevel: 'warning',
    absWorkingDir: ROOT
  })
  const manifest: Record<string, string> = {}
  for (const [output, meta] of Object.entries(result.metafile.outputs)) {
    if (meta.entryPoint === undefined || output.endsWith('.map')) continue
    const logical = basename(meta.entryPoint).replace(/\.ts$/, '.js')
    manifest[logical] = relative(BUILD_DIR, join(ROOT, output))
  }
  Object.assign(manifest, await copyDecoders())
  await writeFile(join(BUILD_DIR, 'manifest.json'), JSON.stringify(manifest, null, 2))
  // What it was built from: the files esbuild read (web/, what web/ imports from src/, three.js's modules).
  const files = Object.keys(result.metafile.inputs).sort()
  await writeFile(INPUTS_FILE, JSON.stringify({ digest: await inputsDigest(files), files }))
  return manifest
}

/**
 * three.js's Draco decoder and Basis (KTX2) transcoder, for the 3D preview:
 * served from our own /static/, never a CDN. Their folders carry three's
 * version, since /static/ is cached as immutable.
 */
async function copyDecoders (): Promise<Record<string, string>> {
  const three = join(ROOT, 'node_modules/three')
  const { version } = JSON.parse(await readFile(join(three, 'package.json'), 'utf8')) as { version: string }
  const folders: Record<string, string> = { 'draco/': 'examples/jsm/libs/draco/gltf', 'basis/': 'examples/jsm/libs/basis' }
  const manifest: Record<string, string> = {}
  for (const [logical, source] of Object.entries(folders)) {
    const target = `${logical.replace(/\/$/, '')}-${version}/`
    await cp(join(three, source), join(BUILD_DIR, target), { recursive: true, filter: (path) => !path.endsWith('.md') })
    manifest[logical] = target
  }
  return manifest
}

/** Whether esbuild is installed: not in a production install (`npm ci --omit=dev`). */
function canBuild (): boolean {
  try {
    import.meta.resolve('esbuild')
    return true
  } catch {
    return false
  }
}

/**
 * What a digest of the build's inputs covers: the files esbuild read, this
 * script, and package-lock.json (the versions of esbuild and of three.js,
 * whose decoders are copied). Equal digests build equal assets.
 */
async function inputsDigest (files: readonly string[]): Promise<string> {
  const hash = createHash('sha256')
  for (const file of [...files, relative(ROOT, fileURLToPath(import.meta.url)), 'package-lock.json']) {
    hash.update(`${file}\0`).update(await readFile(join(ROOT, file)).catch(() => Buffer.from('missing'))).update('\0')
  }
  return hash.digest('hex')
}

/** Whether the assets in public/build/ were built from what is here now. */
async function upToDate (): Promise<boolean> {
  if (!existsSync(join(BUILD_DIR, 'manifest.json'))) return false
  try {
    const { digest, files } = JSON.parse(await readFile(INPUTS_FILE, 'utf8')) as { digest: string, files: string[] }
    return digest === await inputsDigest(files)
  } catch {
    return false
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (canBuild()) {
    // `--if-changed` (npm start's prestart): the assets already built from the same inputs are kept, which saves a
    // restart ~0.6 s of esbuild on this machine.
    if (process.argv.includes('--if-changed') && await upToDate()) {
      console.log('web assets up to date')
    } else {
      const manifest = await buildWeb()
      console.log(`web assets built: ${Object.values(manifest).join(', ')}`)
    }
  } else if (existsSync(join(BUILD_DIR, 'manifest.json'))) {
    console.log('esbuild is not installed (a production install): the web assets already in public/build/ are kept')
  } else {
    console.error('the web assets are not built and esbuild is not installed (npm ci --omit=dev): run `npm ci` and `npm run build:web` first, then `npm ci --omit=dev` (see README.md, "Set up and run")')
    process.exitCode = 1
  }
}
