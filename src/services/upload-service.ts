import { createReadStream } from 'node:fs'
import type { Logger } from 'pino'
import type { Identity } from '../db/identity-repository.ts'
import type { Upload, UploadEntry, UploadRepository } from '../db/upload-repository.ts'
import { BadRequestError, UnprocessableContentError, UnsupportedMediaTypeError } from '../errors.ts'
import { inspectorFor, type FileInspector } from '../assets/file-inspectors.ts'
import { checkReferences } from '../assets/references.ts'
import type { ImportProfileName } from '../ipfs/import-profiles.ts'
import type { ImportCandidate, ImportedNode, IpfsBackend } from '../ipfs/ipfs-backend.ts'
import { classify, extensionOf } from '../assets/asset-kinds.ts'
import { KeyedLock } from './keyed-lock.ts'
import { ZipBundle, type BundleLimits } from './zip-bundle.ts'

/** A file the HTTP layer has received in full into a temp file it owns and removes. */
export interface ReceivedFile {
  tempPath: string
  originalName: string
  size: number
}

/** One line of `ipfs add` output, as the Blender add-on reads it. */
export interface AddedItem {
  Name: string
  Hash: string
  /** Cumulative DAG size as a decimal string, as Kubo prints it. */
  Size: string
}

export interface UploadOutcome {
  /** The record: for a repeat upload, the first one. */
  upload: Upload
  /** False when this owner had already uploaded the same content. */
  created: boolean
  items: AddedItem[]
}

export interface UploadServiceOptions {
  backend: IpfsBackend
  uploads: UploadRepository
  profile: ImportProfileName
  /** Extensions allowed inside bundles; top level also allows `zip`. */
  assetExtensions: ReadonlySet<string>
  bundleLimits: BundleLimits
  logger: Logger
}

const MAX_NAME_LENGTH = 255

/** The last path segment of a client-supplied name, whichever separator the client's OS uses. */
export function baseName (name: string): string {
  return name.split(/[\\/]/).pop()?.trim() ?? ''
}

export class UploadService {
  readonly #options: UploadServiceOptions
  readonly #lock = new KeyedLock()

  constructor (options: UploadServiceOptions) {
    this.#options = options
  }

  /**
   * Checks, imports, pins and records one received file. Either all of that
   * happens or, on any error, none of it remains: no row and no pin.
   */
  async ingest (owner: Identity, file: ReceivedFile, signal?: AbortSignal): Promise<UploadOutcome> {
    const fileName = baseName(file.originalName)
    if (fileName === '' || fileName.length > MAX_NAME_LENGTH || fileName.includes('\0')) {
      throw new BadRequestError('the uploaded file needs a name of 1 to 255 characters')
    }
    const ext = extensionOf(fileName)
    const allowed = this.#options.assetExtensions
    if (ext !== 'zip' && !allowed.has(ext)) {
      throw new UnsupportedMediaTypeError(`files of type "${ext === '' ? '(none)' : ext}" are not accepted`, [`accepted: ${[...allowed, 'zip'].join(', ')}`])
    }
    const rootName = fileName.slice(0, fileName.length - ext.length - 1) || fileName

    if (ext === 'zip') {
      const bundle = await ZipBundle.open(file.tempPath, this.#options.bundleLimits)
      try {
        const refused = bundle.files.filter((entry) => !allowed.has(extensionOf(entry.path)))
        if (refused.length > 0) {
          throw new UnsupportedMediaTypeError('the bundle has files of types that are not accepted', refused.map((e) => e.path))
        }
        const sizes = new Map(bundle.files.map((entry) => [entry.path, entry.size]))
        return await this.#importAndRecord(owner, rootName, bundle.candidates(), sizes, signal)
      } finally {
        bundle.close()
      }
    }

    const candidate: ImportCandidate = { path: fileName, content: createReadStream(file.tempPath) }
    return this.#importAndRecord(owner, rootName, [candidate], new Map([[fileName, file.size]]), signal)
  }

  /** The owner's uploads, newest first, and how many there are in all. */
  async list (owner: Identity, page: { limit: number, offset: number }): Promise<{ uploads: Upload[], total: number }> {
    const [uploads, total] = await Promise.all([
      this.#options.uploads.listByOwner(owner.id, page),
      this.#options.uploads.countByOwner(owner.id)
    ])
    return { uploads, total }
  }

  async #importAndRecord (owner: Identity, name: string, candidates: Iterable<ImportCandidate>, fileSizes: ReadonlyMap<string, number>, signal?: AbortSignal): Promise<UploadOutcome> {
    const { backend, uploads, profile } = this.#options
    // Every file's bytes pass its inspector on their way into the importer: one read, no second pass.
    const inspectors: FileInspector[] = []
    const inspected = [...candidates].map((candidate) => {
      if (candidate.content === undefined) return candidate
      const inspector = inspectorFor(candidate.path)
      inspectors.push(inspector)
      return { path: candidate.path, content: tap(candidate.content, inspector) }
    })
    const nodes = await backend.importTree(inspected, { profile, signal })
    const root = nodes.at(-1)
    if (root === undefined || root.path !== '') throw new Error('the importer produced no root directory')

    // Nothing is pinned or recorded yet: a refusal here leaves only unpinned blocks, which are garbage.
    const reports = inspectors.map((inspector) => inspector.end())
    const mismatches = reports.filter((r) => r.mismatch !== undefined).map((r) => `${r.path} ${r.mismatch ?? ''}`)
    if (mismatches.length > 0) throw new UnsupportedMediaTypeError('the content of some files does not match their type', mismatches)
    const folders = new Set(nodes.filter((n) => n.path !== '' && !fileSizes.has(n.path)).map((n) => n.path))
    const { errors, warnings } = checkReferences(reports, new Set(fileSizes.keys()), folders)
    if (errors.length > 0) throw new UnprocessableContentError('the upload would not load: files it needs are missing', errors)

    const rootCid = root.cid.toString()
    const entries = toEntries(nodes, fileSizes)
    const { kind, isAvatar, primaryPath } = classify([...fileSizes.keys()])

    return this.#lock.run(rootCid, async () => {
      await backend.pin(root.cid, { signal })
      try {
        const { upload, created } = await uploads.insert({
          identityId: owner.id,
          name,
          rootCid,
          kind,
          size: sum(fileSizes.values()),
          isAvatar,
          primaryPath,
          warnings,
          entries
        })
        return { upload, created, items: toAddedItems(name, nodes) }
      } catch (err) {
        // Nothing recorded: release the pin unless another upload holds this root.
        if (await uploads.countByRootCid(rootCid).catch(() => 1) === 0) {
          await backend.unpin(root.cid).catch((unpinErr: unknown) => { this.#options.logger.error({ err: unpinErr, rootCid }, 'could not release the pin of a failed upload') })
        }
        throw err
      }
    })
  }
}

async function * tap (source: AsyncIterable<Uint8Array>, inspector: FileInspector): AsyncIterable<Uint8Array> {
  for await (const chunk of source) {
    inspector.write(chunk)
    yield chunk
  }
}

const sum = (values: Iterable<number>): number => { let total = 0; for (const v of values) total += v; return total }

/** Entries for the database: files with their byte size, directories with the bytes of the files below them. */
function toEntries (nodes: readonly ImportedNode[], fileSizes: ReadonlyMap<string, number>): UploadEntry[] {
  return nodes
    .filter((node) => node.path !== '')
    .map((node) => {
      const isDirectory = !fileSizes.has(node.path)
      const size = isDirectory
        ? sum([...fileSizes].filter(([path]) => path.startsWith(`${node.path}/`)).map(([, bytes]) => bytes))
        : fileSizes.get(node.path) ?? 0
      return { path: node.path, cid: node.cid.toString(), size, isDirectory }
    })
}

/** The answer `ipfs add -r -w` would print, the root named after the upload. */
export function toAddedItems (rootName: string, nodes: readonly ImportedNode[]): AddedItem[] {
  return nodes.map((node) => ({
    Name: node.path === '' ? rootName : `${rootName}/${node.path}`,
    Hash: node.cid.toString(),
    Size: node.dagSize.toString()
  }))
}
