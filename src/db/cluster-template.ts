import { spawn } from 'node:child_process'
import { createHash } from 'node:crypto'
import { lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs'
import { lchown, open, readdir, rename, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

/**
 * A template cluster: what initdb makes, made once per installation and
 * copied into an empty DATA_DIR instead of running initdb there (a copy
 * takes a fraction of initdb's second of CPU). It holds no secret: the
 * cluster's only access rule is trust over its owner's 0700 socket.
 *
 * Layout: <root>/<name>/cluster (the data folder) and <root>/<name>/template.json
 * (the key it was made for and a manifest of every folder and file with its
 * size). Made in a side folder of <root> and renamed into place when complete
 * and synced, so a template killed half-way is never found; checked against
 * its key (a template of other binaries or settings is never used) and its
 * manifest (a damaged one is dropped, not used) before each copy.
 *
 * Finding, checking and starting the copy are synchronous (a few
 * milliseconds): main.ts opens the database just before it imports the rest
 * of Heimdall, an import that holds the event loop for most of a second, and
 * the copy (a `cp` process) is under way on another core by then, not
 * waiting for that import to end.
 */

/** The installation's templates: beside its sources, like Node's compile cache (bin/start.js); git-ignored. */
export const DEFAULT_TEMPLATE_ROOT = fileURLToPath(new URL('../../.cache/postgres-template/', import.meta.url))

/** Raised when the layout of template.json or of the copy changes: older templates are then not used. */
const FORMAT = 1
const MANIFEST = 'template.json'
const CLUSTER = 'cluster'
/** Side folders older than this are left-overs of a killed maker, not another process's work in progress. */
const STALE_PARTIAL_MS = 60 * 60_000

/** Everything that changes what initdb writes; two equal keys give equal clusters. */
export interface TemplateKey {
  /** The PostgreSQL package's version, and each binary's real path, size and change time: another PostgreSQL, another template. */
  postgres: string
  binaries: Array<{ path: string, size: number, mtimeMs: number }>
  initdbArgs: readonly string[]
  pgHba: string
  /** initdb writes the system's time zone into postgresql.conf: the content of /etc/localtime, hashed. */
  localtime: string
}

export interface Template {
  /** The template's data folder, to be copied. */
  cluster: string
  manifest: Manifest
  dir: string
}

interface Manifest {
  format: number
  key: TemplateKey
  /** Relative paths: folders, and files with their sizes. */
  folders: string[]
  files: Record<string, number>
}

interface Owner { uid: number, gid: number }

/** The key for the binaries at `binaryPaths` of package version `version`, initdb run with `initdbArgs` and given `pgHba`. */
export function templateKey (version: string, binaryPaths: string[], initdbArgs: readonly string[], pgHba: string): TemplateKey {
  const binaries = binaryPaths.map((path) => {
    const info = statSync(path)
    return { path, size: info.size, mtimeMs: info.mtimeMs }
  })
  let localtime = 'none'
  try { localtime = createHash('sha256').update(readFileSync('/etc/localtime')).digest('hex') } catch { /* no zone file: UTC */ }
  return { postgres: version, binaries, initdbArgs, pgHba, localtime }
}

/** The template's folder name: the PostgreSQL version for people, a hash of the whole key for the code. */
function templateName (key: TemplateKey): string {
  const hash = createHash('sha256').update(JSON.stringify({ format: FORMAT, key })).digest('hex').slice(0, 16)
  return `${key.postgres.replace(/[^\w.-]/g, '_')}-${hash}`
}

/** The template for `key` in `root`, if there is a complete one made for exactly that key. */
export function findTemplate (root: string, key: TemplateKey): Template | undefined {
  const dir = join(root, templateName(key))
  let manifest: Manifest
  try {
    manifest = JSON.parse(readFileSync(join(dir, MANIFEST), 'utf8')) as Manifest
  } catch {
    return undefined
  }
  if (manifest.format !== FORMAT || JSON.stringify(manifest.key) !== JSON.stringify(key)) return undefined
  return { dir, cluster: join(dir, CLUSTER), manifest }
}

/** Every folder and file under `dir` (relative paths; files with their sizes); anything else (a link, a socket) is refused. */
function walk (dir: string, manifest: Pick<Manifest, 'folders' | 'files'> = { folders: [], files: {} }, at = ''): Pick<Manifest, 'folders' | 'files'> {
  for (const entry of readdirSync(join(dir, at), { withFileTypes: true })) {
    const path = at === '' ? entry.name : `${at}/${entry.name}`
    if (entry.isDirectory()) {
      manifest.folders.push(path)
      walk(dir, manifest, path)
    } else if (entry.isFile()) {
      manifest.files[path] = lstatSync(join(dir, path)).size
    } else {
      throw new Error(`${join(dir, path)} is neither a folder nor a file`)
    }
  }
  return manifest
}

const sorted = (m: Pick<Manifest, 'folders' | 'files'>): string =>
  JSON.stringify({ folders: [...m.folders].sort(), files: Object.entries(m.files).sort(([a], [b]) => a < b ? -1 : a > b ? 1 : 0) })

async function syncPath (path: string): Promise<void> {
  const handle = await open(path, 'r')
  try { await handle.sync() } finally { await handle.close() }
}

async function chownTree (dir: string, owner: Owner): Promise<void> {
  await lchown(dir, owner.uid, owner.gid)
  const entries = await readdir(dir, { withFileTypes: true })
  await Promise.all(entries.map(async (entry) => {
    const path = join(dir, entry.name)
    await (entry.isDirectory() ? chownTree(path, owner) : lchown(path, owner.uid, owner.gid))
  }))
}

/**
 * Makes the template for `key` in `root`: `build` writes a complete, synced
 * cluster into the empty folder it is given (called synchronously, so that a
 * process it starts runs beside main.ts's import), in a side folder renamed
 * into place with its manifest. Losing a race to another maker is fine: its
 * template is as good. Templates of other keys, and side folders left by a
 * killed maker, are removed once the new one is in place. `owner`: who the
 * template belongs to when `build` ran as someone else (as root).
 */
export async function makeTemplate (root: string, key: TemplateKey, build: (cluster: string) => Promise<void>, owner?: Owner): Promise<Template> {
  const name = templateName(key)
  mkdirSync(root, { recursive: true, mode: 0o700 })
  const partial = mkdtempSync(join(root, '.partial-'))
  try {
    mkdirSync(join(partial, CLUSTER), { mode: 0o700 })
    await build(join(partial, CLUSTER))
    if (owner !== undefined) await chownTree(partial, owner)
    const manifest: Manifest = { format: FORMAT, key, ...walk(join(partial, CLUSTER)) }
    const handle = await open(join(partial, MANIFEST), 'wx', 0o600)
    try {
      await handle.writeFile(`${JSON.stringify(manifest, null, 1)}\n`)
      await handle.sync()
    } finally {
      await handle.close()
    }
    await syncPath(partial)
    try {
      await rename(partial, join(root, name))
    } catch (err) {
      // Another maker was quicker (rename will not replace a folder that has files): its template is as good.
      // A folder of that name that is no template (emptied by hand, say) is replaced.
      if (!['ENOTEMPTY', 'EEXIST'].includes((err as NodeJS.ErrnoException).code ?? '')) throw err
      if (findTemplate(root, key) === undefined) {
        await rm(join(root, name), { recursive: true, force: true })
        await rename(partial, join(root, name))
      }
    }
    await syncPath(root)
  } finally {
    await rm(partial, { recursive: true, force: true })
  }
  const made = findTemplate(root, key)
  if (made === undefined) throw new Error(`the template ${join(root, name)} is not there after it was made`)
  await pruneTemplates(root, name)
  return made
}

/** Removes every other template of `root` (other binaries or settings: never used again) and stale side folders. */
async function pruneTemplates (root: string, keep: string): Promise<void> {
  for (const entry of await readdir(root)) {
    if (entry === keep) continue
    const path = join(root, entry)
    if (entry.startsWith('.partial-') && Date.now() - (await stat(path).then((s) => s.mtimeMs, () => 0)) < STALE_PARTIAL_MS) continue
    await rm(path, { recursive: true, force: true }).catch(() => {})
  }
}

/**
 * Checks the template against its manifest, synchronously (a few
 * milliseconds): a template that differs (a file gone or cut short since it
 * was made) is removed and this throws; the caller then runs initdb, and the
 * next start makes a new template.
 */
export function checkTemplate (template: Template): void {
  if (sorted(walk(template.cluster)) === sorted(template.manifest)) return
  rmSync(template.dir, { recursive: true, force: true })
  throw new Error(`the template ${template.dir} differs from its manifest (removed)`)
}

/**
 * Copies a checked template's cluster into the empty folder `into` (which
 * exists): `cp -a`, started before this returns, so it runs while the event
 * loop is held. Files and folders keep their modes (0600, 0700: initdb's);
 * with `owner` (as root) everything is chowned to it, as initdb's own files
 * would belong to the user it ran as.
 */
export async function copyTemplate (template: Template, into: string, owner?: Owner): Promise<void> {
  const script = owner === undefined ? 'exec cp -a -- "$0/." "$1"' : 'cp -a -- "$0/." "$1" && exec chown -R -- "$2" "$1"'
  const child = spawn('/bin/sh', ['-c', script, template.cluster, into, owner === undefined ? '' : `${owner.uid}:${owner.gid}`], {
    env: { PATH: process.env.PATH ?? '/usr/bin:/bin', LC_ALL: 'C' },
    stdio: ['ignore', 'ignore', 'pipe']
  })
  let output = ''
  child.stderr.on('data', (chunk: Buffer) => { output = (output + chunk.toString()).slice(-4096) })
  const status = await new Promise<string>((resolve) => {
    child.once('error', (err) => { resolve(err.message) })
    child.once('close', (code, signal) => { resolve(code === 0 ? '' : `exit ${String(code ?? signal)}`) })
  })
  if (status !== '') throw new Error(`copying the template ${template.dir} failed (${status}): ${output.trim()}`)
}
