import { createHash } from 'node:crypto'
import { constants } from 'node:fs'
import { copyFile, lchown, lstat, mkdir, mkdtemp, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises'
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
 * its key before use (a template of other binaries or settings is never
 * used) and against its manifest while it is copied (a damaged one is
 * dropped, not used).
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
export async function templateKey (version: string, binaryPaths: string[], initdbArgs: readonly string[], pgHba: string): Promise<TemplateKey> {
  const binaries = await Promise.all(binaryPaths.map(async (path) => {
    const info = await stat(path)
    return { path, size: info.size, mtimeMs: info.mtimeMs }
  }))
  const localtime = await readFile('/etc/localtime').then((bytes) => createHash('sha256').update(bytes).digest('hex'), () => 'none')
  return { postgres: version, binaries, initdbArgs, pgHba, localtime }
}

/** The template's folder name: the PostgreSQL version for people, a hash of the whole key for the code. */
function templateName (key: TemplateKey): string {
  const hash = createHash('sha256').update(JSON.stringify({ format: FORMAT, key })).digest('hex').slice(0, 16)
  return `${key.postgres.replace(/[^\w.-]/g, '_')}-${hash}`
}

/** The template for `key` in `root`, if there is a complete one made for exactly that key. */
export async function findTemplate (root: string, key: TemplateKey): Promise<Template | undefined> {
  const dir = join(root, templateName(key))
  let manifest: Manifest
  try {
    manifest = JSON.parse(await readFile(join(dir, MANIFEST), 'utf8')) as Manifest
  } catch {
    return undefined
  }
  if (manifest.format !== FORMAT || JSON.stringify(manifest.key) !== JSON.stringify(key)) return undefined
  return { dir, cluster: join(dir, CLUSTER), manifest }
}

/** Every folder and file under `dir` (relative paths; files with their sizes); anything else (a link, a socket) is refused. */
async function walk (dir: string, manifest: Pick<Manifest, 'folders' | 'files'>, at = ''): Promise<void> {
  const entries = await readdir(join(dir, at), { withFileTypes: true })
  await Promise.all(entries.map(async (entry) => {
    const path = at === '' ? entry.name : `${at}/${entry.name}`
    if (entry.isDirectory()) {
      manifest.folders.push(path)
      await walk(dir, manifest, path)
    } else if (entry.isFile()) {
      manifest.files[path] = (await lstat(join(dir, path))).size
    } else {
      throw new Error(`${join(dir, path)} is neither a folder nor a file`)
    }
  }))
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
 * cluster into the empty folder it is given, in a side folder renamed into
 * place with its manifest. Losing a race to another maker is fine: its
 * template is as good. Templates of other keys, and side folders left by a
 * killed maker, are removed once the new one is in place. `owner`: who the
 * template belongs to when `build` ran as someone else (as root).
 */
export async function makeTemplate (root: string, key: TemplateKey, build: (cluster: string) => Promise<void>, owner?: Owner): Promise<Template> {
  const name = templateName(key)
  await mkdir(root, { recursive: true, mode: 0o700 })
  const partial = await mkdtemp(join(root, '.partial-'))
  try {
    await mkdir(join(partial, CLUSTER), { mode: 0o700 })
    await build(join(partial, CLUSTER))
    if (owner !== undefined) await chownTree(partial, owner)
    const manifest: Manifest = { format: FORMAT, key, folders: [], files: {} }
    await walk(join(partial, CLUSTER), manifest)
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
      if (await findTemplate(root, key) === undefined) {
        await rm(join(root, name), { recursive: true, force: true })
        await rename(partial, join(root, name))
      }
    }
    await syncPath(root)
  } finally {
    await rm(partial, { recursive: true, force: true })
  }
  const made = await findTemplate(root, key)
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
 * Copies the template's cluster into the empty folder `into` (which exists),
 * checking it against the manifest as it goes; files keep their modes,
 * folders are 0700 as initdb makes them. With `owner` (as root), every copy
 * is chowned to it, as initdb's own files would belong to the user it ran
 * as. A template that differs from its manifest is removed and the copy
 * fails: the caller then runs initdb, and the next start makes a new one.
 */
export async function copyTemplate (template: Template, into: string, owner?: Owner): Promise<void> {
  const seen: Pick<Manifest, 'folders' | 'files'> = { folders: [], files: {} }
  const copy = async (at: string): Promise<void> => {
    const entries = await readdir(join(template.cluster, at), { withFileTypes: true })
    await Promise.all(entries.map(async (entry) => {
      const path = at === '' ? entry.name : `${at}/${entry.name}`
      const from = join(template.cluster, path)
      const to = join(into, path)
      if (entry.isDirectory()) {
        seen.folders.push(path)
        await mkdir(to, { mode: 0o700 })
        if (owner !== undefined) await lchown(to, owner.uid, owner.gid)
        await copy(path)
      } else if (entry.isFile()) {
        seen.files[path] = (await lstat(from)).size
        // A reflink where the file system has them (btrfs, XFS): no bytes copied at all.
        await copyFile(from, to, constants.COPYFILE_EXCL | constants.COPYFILE_FICLONE)
        if (owner !== undefined) await lchown(to, owner.uid, owner.gid)
      } else {
        throw new Error(`${from} is neither a folder nor a file`)
      }
    }))
  }
  await copy('')
  if (sorted(seen) !== sorted(template.manifest)) {
    await rm(template.dir, { recursive: true, force: true }).catch(() => {})
    throw new Error(`the template ${template.dir} differs from its manifest (removed)`)
  }
}
