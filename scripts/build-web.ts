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
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { basename, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const ROOT = fileURLToPath(new URL('../', import.meta.url))
export const BUILD_DIR = join(ROOT, 'public/build')

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
    logLevel: 'warning'
  })
  const manifest: Record<string, string> = {}
  for (const [output, meta] of Object.entries(result.metafile.outputs)) {
    if (meta.entryPoint === undefined || output.endsWith('.map')) continue
    const logical = basename(meta.entryPoint).replace(/\.ts$/, '.js')
    manifest[logical] = relative(BUILD_DIR, join(ROOT, output))
  }
  Object.assign(manifest, await copyDecoders())
  await writeFile(join(BUILD_DIR, 'manifest.json'), JSON.stringify(manifest, null, 2))
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

/** Where the last build notes what it was built from (see inputsDigest). */
const INPUTS_FILE = join(BUILD_DIR, 'inputs.sha256')

/**
 * What the assets are built from: every file under web/, this script, and
 * package-lock.json (the versions of esbuild and of three.js, whose
 * decoders are copied). Equal digests build equal assets.
 */
async function inputsDigest (): Promise<string> {
  const hash = createHash('sha256')
  const web = join(ROOT, 'web')
  const files = (await readdir(web, { recursive: true, withFileTypes: true })).filter((entry) => entry.isFile()).map((entry) => join(entry.parentPath, entry.name)).sort()
  for (const file of [...files, fileURLToPath(import.meta.url), join(ROOT, 'package-lock.json')]) {
    hash.update(`${relative(ROOT, file)}\0`).update(await readFile(file).catch(() => Buffer.alloc(0))).update('\0')
  }
  return hash.digest('hex')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (canBuild()) {
    // `--if-changed` (npm start's prestart): the assets already built from the same inputs are kept, which saves a
    // restart ~0.6 s of esbuild on this machine.
    const digest = await inputsDigest()
    if (process.argv.includes('--if-changed') && existsSync(join(BUILD_DIR, 'manifest.json')) && await readFile(INPUTS_FILE, 'utf8').catch(() => '') === digest) {
      console.log('web assets up to date')
    } else {
      const manifest = await buildWeb()
      await writeFile(INPUTS_FILE, digest)
      console.log(`web assets built: ${Object.values(manifest).join(', ')}`)
    }
  } else if (existsSync(join(BUILD_DIR, 'manifest.json'))) {
    console.log('esbuild is not installed (a production install): the web assets already in public/build/ are kept')
  } else {
    console.error('the web assets are not built and esbuild is not installed (npm ci --omit=dev): run `npm ci` and `npm run build:web` first, then `npm ci --omit=dev` (see README.md, "Set up and run")')
    process.exitCode = 1
  }
}
