import { createReadStream } from 'node:fs'
import type { Logger } from 'pino'
import { classify, contentExtensionOf, extensionOf, gzippedModelExtensions, stemOf } from '../assets/asset-kinds.ts'
import { gunzipBudget, inspectorFor, type FileInspector, type FileReport } from '../assets/file-inspectors.ts'
import { checkReferences } from '../assets/references.ts'
import { buildAvatarReport } from '../assets/avatar-report.ts'
import type { Identity } from '../db/identity-repository.ts'
import { IMPORT_PIN_PREFIX, type PinIntentRepository } from '../db/pin-intent-repository.ts'
import type { Upload, UploadEntry, UploadRepository } from '../db/upload-repository.ts'
import { isDatabaseUnavailable } from '../db/unavailable.ts'
import { CID } from 'multiformats/cid'
import { BadRequestError, ContentBlockedError, HeimdallError, listedAtMost, InsufficientStorageError, isOutOfSpace, NotFoundError, PayloadTooLargeError, ServiceUnavailableError, UnprocessableContentError, UnsupportedMediaTypeError } from '../errors.ts'
import { readCar } from '../ipfs/car-reader.ts'
import { blockedContent } from '../denylist/blocked-content.ts'
import type { Denylist } from '../denylist/denylist.ts'
import { IMPORT_PROFILES, type ImportProfileName } from '../ipfs/import-profiles.ts'
import { importMadeNoPin, type ImportCandidate, type ImportedNode, type ImportLease, type IpfsBackend, type VerifiedBlock } from '../ipfs/ipfs-backend.ts'
import { CarBundle, wrapInDirectory, type CarEntry } from './car-bundle.ts'
import { KeyedLock } from './keyed-lock.ts'
import { rootForms, rootKey } from '../ipfs/cid-forms.ts'
import { inspectLocalDag } from '../ipfs/local-dag.ts'
import type { ContentLock } from './content-lock.ts'
import type { QuotaService } from './quota-service.ts'
import { CONTROL_CHARACTER, ZipBundle, type BundleLimits } from './zip-bundle.ts'
import { codePageNote, type ReadName } from './zip-names.ts'

/** What recording an upload needs of the quotas: the defaults to measure it against, and the error when it no longer fits. */
export type QuotaGuard = Pick<QuotaService, 'defaults' | 'refusal'>

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

/** A checked client file name: what the upload is called and how it is read. */
export interface UploadName {
  fileName: string
  /** The root directory's name: the file name without its extension. */
  rootName: string
  /** A zip: read from a file on disk, its directory being at its end. */
  isBundle: boolean
  /** A CAR: a stream of blocks, imported as it arrives. */
  isCar?: boolean
}

/**
 * Blocks in the node, nothing pinned or recorded: what an import leaves for
 * `commit` to check and keep. Its lease keeps the blocks from garbage
 * collection until `commit` has pinned them; an upload that is not committed
 * must be `drop`ped, which removes them.
 */
export interface ImportedUpload {
  name: UploadName
  nodes: ImportedNode[]
  reports: FileReport[]
  /** Bytes of each file, by path. */
  fileSizes: ReadonlyMap<string, number>
  lease: ImportLease
  /** Warnings about the upload as a whole (a bundle's entries left out), beside those about its files. */
  notes?: readonly string[]
  /** A bundle's files whose names were read without a mark (see ZipBundle.unmarkedNames): a refusal for a missing file says how. */
  unmarkedNames?: ReadonlyMap<string, ReadName>
  /** The pin the import made of its root, where the node pins in the import (see IpfsBackend.importPins). */
  importPin?: ImportPin
}

/**
 * A pin an import made under a name, and its row in the pin journal
 * (import_pin_intents), open until the upload is recorded (the record holds
 * the pin) or dropped (the pin released unless something else holds the
 * root).
 */
export interface ImportPin {
  readonly id: number
  readonly pinName: string
  closed: boolean
}

export interface UploadServiceOptions {
  backend: IpfsBackend
  uploads: UploadRepository
  profile: ImportProfileName
  /** Extensions allowed inside bundles; top level also allows `zip` and `car`. */
  assetExtensions: ReadonlySet<string>
  bundleLimits: BundleLimits
  /** The links a CAR's blocks may have in all (maxCarLinks of MAX_UPLOAD_BYTES and ZIP_MAX_ENTRIES), uploaded or fetched for a pin request. */
  maxCarLinks: number
  /** ZIP_NAME_ENCODING: what a zip's names neither marked nor valid as UTF-8 are read in (code page 437 by default). */
  zipNameEncoding?: string
  logger: Logger
  /** The journal of pins being changed, and this instance's name in it. */
  pinIntents: PinIntentRepository
  instanceId: string
  /** Asked for a collection after a delete. */
  collector?: { request: (reason: string) => void }
  /** What else keeps roots pinned (the Pinning Service API's requests): a root is unpinned only when this, the operator's pins and the uploads count zero. */
  otherReferences?: { countHolding: (rootCids: readonly string[]) => Promise<number> }
  /** Roots the operator imported without an owner: they hold their content as uploads do. */
  operatorPins?: { add: (rootCid: string, actor: string, entries?: ReadonlyArray<{ path: string, cid: string }>) => Promise<void>, remove: (rootCids: readonly string[]) => Promise<number>, countHolding: (rootCids: readonly string[]) => Promise<number> }
  /** The operator's denylists: matching content is refused before it is pinned. */
  denylist?: Denylist
  /** Roots a denylist took down: referenced by nothing, whoever names them; recording a new upload of one allowed again lifts it (see UploadRepository.insert). */
  blockedRoots?: { isBlocked: (rootCids: readonly string[]) => Promise<boolean> }
  /** Every root the database holds, a page at a time (see HeldRootRepository): what `restorePins` checks the node's pins against. */
  heldRoots?: { page: (after: string, limit: number) => Promise<string[]> }
  /**
   * Serialises pin changes per root: in this process by default; across
   * instances (PgAdvisoryLock) when they share a block store.
   */
  lock?: ContentLock
}

const MAX_NAME_LENGTH = 255

/** A pin journal row of work under way (see UploadService.#journaled). */
export interface JournalEntry {
  readonly id: number
  /** Removed by the work itself, in the transaction that recorded what the pin is for. */
  settled: boolean
  /** Left for settlePins: the pin may not be where the records say it should be. */
  keep: boolean
}

/** The last path segment of a client-supplied name, whichever separator the client's OS uses. */
export function baseName (name: string): string {
  return name.split(/[\\/]/).pop()?.trim() ?? ''
}

/**
 * The upload pipeline: name → import (bytes stream through the content
 * inspectors into the IPFS backend) → commit (checks, pin, record). Either a
 * commit succeeds or nothing of the upload remains but unpinned blocks.
 */
export class UploadService {
  readonly #options: UploadServiceOptions
  readonly #lock: ContentLock
  /** The journal row of the work under each root's lock in this process (see #journaled). */
  readonly #working = new Map<string, number>()
  /** The journal rows of this process's imports whose pins are not settled yet (see #openImportPin): settlePins leaves them. */
  readonly #importing = new Set<number>()

  constructor (options: UploadServiceOptions) {
    this.#options = options
    this.#lock = options.lock ?? new KeyedLock()
  }

  /** Checks a client file name before any byte is read: 400 for no name, 415 for a type not accepted. */
  name (originalName: string): UploadName {
    const fileName = baseName(originalName)
    if (fileName === '' || fileName.length > MAX_NAME_LENGTH || fileName.includes('\0')) {
      throw new BadRequestError('the uploaded file needs a name of 1 to 255 characters')
    }
    if (CONTROL_CHARACTER.test(fileName)) throw new BadRequestError('the uploaded file\'s name has a control character; rename it')
    const ext = extensionOf(fileName)
    const allowed = this.#options.assetExtensions
    if (ext !== 'zip' && ext !== 'car' && !allowed.has(contentExtensionOf(fileName))) {
      throw new UnsupportedMediaTypeError(`files of type "${ext === '' ? '(none)' : ext}" are not accepted`, [`accepted: ${[...allowed, ...gzippedModelExtensions(allowed), 'zip', 'car'].join(', ')}`])
    }
    return { fileName, rootName: stemOf(fileName), isBundle: ext === 'zip', isCar: ext === 'car' }
  }

  /** Imports what arrives as a stream while it arrives: a CAR, or a single asset. */
  async importStream (name: UploadName, content: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<ImportedUpload> {
    return name.isCar === true ? this.importCar(name, content, { signal }) : this.importFile(name, content, signal)
  }

  /**
   * Imports a CAR (v1, or the CARv1 a v2 holds) as it streams: each block verified against its CID and
   * written under the upload's lease; then the DAG below the single root is
   * walked (complete, UnixFS, names and limits as a zip's), and each file's
   * bytes are read back from the node through its inspector, so that
   * `commit` checks a CAR as it checks a zip. A root that is one file is
   * wrapped in a directory, as a single asset is (see the README).
   * `unchecked` (an operator's import) keeps the verification and the
   * completeness check and skips the names, limits and content checks.
   */
  async importCar (name: UploadName, source: AsyncIterable<Uint8Array>, options: { signal?: AbortSignal, unchecked?: boolean } = {}): Promise<ImportedUpload> {
    const { backend, profile } = this.#options
    const checked = options.unchecked !== true
    const { root, blocks } = await readCar(source)
    const bundle = new CarBundle(root, { maxLinks: this.#options.maxCarLinks })
    const lease = await backend.openLease()
    try {
      await backend.putBlocks(bundle.record(blocks), { lease, signal: options.signal })
      const tree = bundle.tree(checked ? this.#options.bundleLimits : undefined)
      let nodes: ImportedNode[]
      let named = name
      if (tree.rootIsFile) {
        // Named after the CAR without `.car`: `model.glb.car` holds `model.glb`, and the upload is called `model`.
        const file = tree.entries[0] as CarEntry
        const fileName = name.rootName
        const ext = extensionOf(fileName)
        if (checked && !this.#options.assetExtensions.has(contentExtensionOf(fileName))) {
          throw new UnsupportedMediaTypeError('the CAR\'s root is a single file: name the CAR after it, with an accepted extension (e.g. model.glb.car)', [`${fileName}: type "${ext === '' ? '(none)' : ext}" is not accepted`])
        }
        const wrapper = await wrapInDirectory(fileName, file, IMPORT_PROFILES[profile].cidVersion)
        await backend.putBlocks([wrapper.block], { lease, signal: options.signal })
        nodes = [{ path: fileName, cid: file.cid, dagSize: file.dagSize }, { path: '', cid: wrapper.block.cid, dagSize: wrapper.dagSize }]
        named = { ...name, rootName: stemOf(fileName) }
      } else {
        nodes = tree.entries.map((entry) => ({ path: entry.path, cid: entry.cid, dagSize: entry.dagSize }))
      }
      const files = tree.rootIsFile ? [{ ...(tree.entries[0] as CarEntry), path: nodes[0]?.path ?? '' }] : tree.entries.filter((entry) => !entry.isDirectory)
      if (!checked) return { name: named, nodes, reports: [], fileSizes: new Map(files.map((f) => [f.path, f.size])), lease }
      const refused = files.filter((f) => !this.#options.assetExtensions.has(contentExtensionOf(f.path)))
      if (refused.length > 0 && !tree.rootIsFile) throw new UnsupportedMediaTypeError('the CAR has files of types that are not accepted', listedAtMost(refused.map((f) => f.path)))
      // Each file's bytes, read back from the node, pass its inspector; the byte limit holds whatever the nodes declare.
      const reports: FileReport[] = []
      const fileSizes = new Map<string, number>()
      const budget = { left: this.#options.bundleLimits.maxUncompressedBytes }
      const gunzip = gunzipBudget()
      for (const file of files) {
        const inspected = { inspector: inspectorFor(file.path, gunzip), bytes: 0 }
        for await (const chunk of tap(backend.read(file.cid, [], { signal: options.signal }), inspected, options.signal)) {
          budget.left -= chunk.byteLength
          if (budget.left < 0) throw new PayloadTooLargeError('the CAR\'s files are too large', [`the files add up to more than ${this.#options.bundleLimits.maxUncompressedBytes} bytes`])
        }
        reports.push(inspected.inspector.end())
        fileSizes.set(file.path, inspected.bytes)
      }
      return { name: named, nodes, reports, fileSizes, lease }
    } catch (err) {
      await lease.discard().catch((discardErr: unknown) => { this.#options.logger.warn({ err: discardErr }, 'could not remove the blocks of a refused CAR') })
      throw isOutOfSpace(err) ? new InsufficientStorageError() : err
    }
  }

  /**
   * Whether an upload or an operator's pin records `rootCid` (either
   * spelling): content that passed the upload's checks, or that the
   * operator chose. Not whether the node has it pinned: over Kubo an
   * upload's add pins its root before its checks.
   */
  async holdsRecorded (rootCid: string): Promise<boolean> {
    return await this.#countRecorded(rootForms(rootCid)) > 0
  }

  /** The uploads and operator's pins that record any of `forms` (a root's spellings). */
  async #countRecorded (forms: readonly string[]): Promise<number> {
    const [uploads, operator] = await Promise.all([this.#options.uploads.countByRootCid(forms), this.#options.operatorPins?.countHolding(forms) ?? 0])
    return uploads + operator
  }

  /**
   * The gatekeeper for content fetched from the IPFS network for a pin
   * request, the same as for a CAR upload: the blocks (each already stored
   * under the fetch's lease) are noted as they arrive; then the DAG below
   * `root` must be a whole UnixFS tree of safe names within the bundle
   * limits, every file of an accepted type whose bytes pass its inspector,
   * and everything the files reference must be there. Nothing is wrapped:
   * the root is pinned as it is. A root that is a single file is judged by
   * `fileName` (the pin's name). Throws what an upload would get; the caller
   * discards the lease.
   */
  async inspectFetched (root: CID, blocks: AsyncIterable<VerifiedBlock>, options: { fileName?: string, signal?: AbortSignal } = {}): Promise<{ files: number, bytes: number, warnings: string[] }> {
    const { backend, assetExtensions, bundleLimits } = this.#options
    const bundle = new CarBundle(root, { maxLinks: this.#options.maxCarLinks })
    for await (const _ of bundle.record(blocks)) options.signal?.throwIfAborted()
    const tree = bundle.tree(bundleLimits)
    // The operator's denylists, as for an upload: by CID of the root and of every node, and by path.
    const denylist = this.#options.denylist
    const blocked = denylist === undefined ? undefined : blockedContent(denylist, root, tree.entries)
    if (blocked !== undefined) {
      this.#options.logger.warn({ rootCid: root.toString(), rule: blocked.rule.text, list: blocked.file }, 'fetched content refused: it is on a denylist')
      throw new ContentBlockedError('this content is blocked on this node by its operator', 403)
    }
    let files: CarEntry[]
    if (tree.rootIsFile) {
      const fileName = baseName(options.fileName ?? '')
      const ext = extensionOf(fileName)
      if (!assetExtensions.has(contentExtensionOf(fileName))) {
        throw new UnsupportedMediaTypeError('the content is a single file: give the pin request the file\'s name, with an accepted extension (e.g. model.glb), so that its type can be checked',
          [`${fileName === '' ? '(no name)' : fileName}: type "${ext === '' ? '(none)' : ext}" is not accepted`])
      }
      files = [{ ...(tree.entries[0] as CarEntry), path: fileName }]
    } else {
      files = tree.entries.filter((entry) => !entry.isDirectory)
    }
    const refused = files.filter((f) => !assetExtensions.has(contentExtensionOf(f.path)))
    if (refused.length > 0) throw new UnsupportedMediaTypeError('the content has files of types that are not accepted', listedAtMost(refused.map((f) => f.path)))
    const reports: FileReport[] = []
    const fileSizes = new Map<string, number>()
    const budget = { left: bundleLimits.maxUncompressedBytes }
    const gunzip = gunzipBudget()
    for (const file of files) {
      const inspected = { inspector: inspectorFor(file.path, gunzip), bytes: 0 }
      for await (const chunk of tap(backend.read(file.cid, [], { signal: options.signal }), inspected, options.signal)) {
        budget.left -= chunk.byteLength
        if (budget.left < 0) throw new PayloadTooLargeError('the files are too large', [`the files add up to more than ${bundleLimits.maxUncompressedBytes} bytes`])
      }
      reports.push(inspected.inspector.end())
      fileSizes.set(file.path, inspected.bytes)
    }
    const mismatches = reports.filter((r) => r.mismatch !== undefined).map((r) => `${r.path} ${r.mismatch ?? ''}`)
    if (mismatches.length > 0) throw new UnsupportedMediaTypeError('the content of some files does not match their type', listedAtMost(mismatches))
    const folders = new Set(tree.entries.filter((e) => e.isDirectory && e.path !== '').map((e) => e.path))
    const { errors, warnings } = checkReferences(reports, new Set(fileSizes.keys()), folders, fileSizes)
    if (errors.length > 0) throw new UnprocessableContentError('the content would not load: files it needs are missing', listedAtMost(errors))
    return { files: files.length, bytes: sum(fileSizes.values()), warnings }
  }

  /** Imports one asset from a stream, wrapped in a directory so its link keeps its name. */
  async importFile (name: UploadName, content: AsyncIterable<Uint8Array>, signal?: AbortSignal): Promise<ImportedUpload> {
    if (name.isBundle) throw new Error('a bundle is imported from a file on disk')
    return this.#import(name, [{ path: name.fileName, content }], signal)
  }

  /** Imports a zip bundle (on disk: its directory is at its end), refusing it whole when any entry breaks a rule. */
  async importBundle (name: UploadName, zipPath: string, signal?: AbortSignal): Promise<ImportedUpload> {
    const bundle = await ZipBundle.open(zipPath, this.#options.bundleLimits, { nameEncoding: this.#options.zipNameEncoding })
    try {
      const refused = bundle.files.filter((entry) => !this.#options.assetExtensions.has(contentExtensionOf(entry.path)))
      if (refused.length > 0) {
        // A name misread (a Shift-JIS byte read as a folder's separator) can leave it without its extension.
        const misread = refused.some((entry) => bundle.unmarkedNames.has(entry.path)) ? codePageNote(bundle.unmarkedNames) : undefined
        throw new UnsupportedMediaTypeError('the bundle has files of types that are not accepted', listedAtMost(refused.map((e) => e.path), misread))
      }
      const imported = await this.#import(name, bundle.candidates(), signal)
      const notes = [
        ...(bundle.skipped.length === 0 ? [] : [skippedNote(bundle.skipped)]),
        // Accepted, only guesses are worth a word: a name read in the operator's code page is taken as meant.
        ...[codePageNote(bundle.unmarkedNames, { guessesOnly: true })].filter((note) => note !== undefined)
      ]
      return { ...imported, ...(notes.length === 0 ? {} : { notes }), unmarkedNames: bundle.unmarkedNames }
    } finally {
      bundle.close()
    }
  }

  /** Imports a received file on disk, bundle or single asset. */
  async importReceived (name: UploadName, path: string, signal?: AbortSignal): Promise<ImportedUpload> {
    if (name.isBundle) return this.importBundle(name, path, signal)
    const stream = createReadStream(path, { highWaterMark: 1024 * 1024 })
    // A CAR refused at its header leaves the rest unread: close the file either way.
    try { return await this.importStream(name, stream, signal) } finally { stream.destroy() }
  }

  /**
   * Pins an imported upload without recording it (an operator's import with
   * no owner): the pin alone keeps it. Drops it if the pin fails.
   */
  async pinUnrecorded (imported: ImportedUpload, actor: string): Promise<ImportedNode> {
    const root = imported.nodes.at(-1)
    try {
      if (root === undefined) throw new Error('the import produced no root')
      const rootCid = root.cid.toString()
      // Recorded as the operator's pin, so that it holds the content as an upload would (a delete of someone's upload
      // of the same DAG, a collection, a restart), and under the same lock, journal and denylists as an upload.
      await this.#underRoot(rootCid, async () => this.#journaled(rootCid, async () => {
        this.#refuseListed(root.cid, imported.nodes, { actor })
        if (await this.#options.blockedRoots?.isBlocked(rootForms(rootCid)) === true) {
          throw new ContentBlockedError('this content was taken down on this node by a denylist: only an upload of it, once no list names it, restores it', 403)
        }
        await this.#options.backend.pin(root.cid, { imported: imported.lease })
        await this.#options.operatorPins?.add(rootKey(rootCid), actor, imported.nodes.filter((node) => node.path !== '').map((node) => ({ path: node.path, cid: node.cid.toString() })))
      }))
      await imported.lease.release()
      await this.#closeImportPin(imported.importPin)
      return root
    } catch (err) {
      await this.drop(imported)
      throw isOutOfSpace(err) ? new InsufficientStorageError() : err
    }
  }

  /**
   * Checks what the import found, then pins and records it for `owner`.
   * Mismatched content is 415, a missing required reference 422; both before
   * anything is pinned. If recording fails the pin is released unless another
   * upload holds the same root.
   */
  async commit (owner: Identity, imported: ImportedUpload, quotas?: QuotaGuard): Promise<UploadOutcome> {
    try {
      const outcome = await this.#commit(owner, imported, quotas)
      await imported.lease.release()
      await this.#closeImportPin(imported.importPin)
      return outcome
    } catch (err) {
      await this.drop(imported)
      throw isOutOfSpace(err) ? new InsufficientStorageError() : err
    }
  }

  /**
   * Gives up an imported upload that will not be committed: the pin its
   * import made is released and its blocks that nothing else holds are
   * removed. Idempotent; after a commit it does nothing.
   */
  async drop (imported: ImportedUpload): Promise<void> {
    await imported.lease.discard().catch((err: unknown) => { this.#options.logger.warn({ err }, 'could not remove the blocks of a dropped upload') })
    const { importPin } = imported
    if (importPin === undefined || importPin.closed) return
    this.#importPinClosed(importPin)
    const rootCid = imported.nodes.at(-1)?.cid.toString()
    try {
      // Under the root's lock and journal, as a delete: another upload, pin request or operator's pin of the same root keeps it.
      if (rootCid !== undefined) await this.changePin(rootCid, async (intent) => { await this.releaseIfUnreferenced(rootCid, intent) })
      await this.#options.pinIntents.removeImportPin(importPin.id)
    } catch (err) {
      this.#options.logger.warn({ err, rootCid }, 'could not release the pin of a dropped upload: left to the pin journal')
    }
  }

  /**
   * A journal row for the pin an import is about to make, where the node
   * pins in the import (see IpfsBackend.importPins); undefined otherwise.
   */
  async #openImportPin (): Promise<ImportPin | undefined> {
    if (this.#options.backend.importPins === undefined) return undefined
    const row = await this.#options.pinIntents.addImportPin(this.#options.instanceId)
    this.#importing.add(row.id)
    return { ...row, closed: false }
  }

  /** The upload is recorded (or the operator's pin is): its record holds the pin from now on, and the row goes. */
  async #closeImportPin (importPin: ImportPin | undefined): Promise<void> {
    if (importPin === undefined || importPin.closed) return
    this.#importPinClosed(importPin)
    // A row left behind is settled later, and the record keeps the pin then.
    await this.#options.pinIntents.removeImportPin(importPin.id).catch((err: unknown) => { this.#options.logger.warn({ err }, 'could not clear a pin journal row') })
  }

  /** The import's pin row is gone (or going): neither settling nor a drop touches it again. */
  #importPinClosed (importPin: ImportPin): void {
    importPin.closed = true
    this.#importing.delete(importPin.id)
  }

  async #commit (owner: Identity, imported: ImportedUpload, quotas: QuotaGuard | undefined): Promise<UploadOutcome> {
    const { backend, uploads } = this.#options
    const { name, nodes, reports, fileSizes } = imported
    const root = nodes.at(-1)
    if (root === undefined || root.path !== '') throw new Error('the importer produced no root directory')

    const mismatches = reports.filter((r) => r.mismatch !== undefined).map((r) => `${r.path} ${r.mismatch ?? ''}`)
    if (mismatches.length > 0) throw new UnsupportedMediaTypeError('the content of some files does not match their type', listedAtMost(mismatches))
    const folders = new Set(nodes.filter((n) => n.path !== '' && !fileSizes.has(n.path)).map((n) => n.path))
    const { errors, warnings: fileWarnings } = checkReferences(reports, new Set(fileSizes.keys()), folders, fileSizes)
    if (errors.length > 0) {
      // A file that seems missing may be one whose name was read wrong: the refusal says which names were read in a code page.
      const note = imported.unmarkedNames === undefined ? undefined : codePageNote(imported.unmarkedNames)
      throw new UnprocessableContentError('the upload would not load: files it needs are missing', listedAtMost(errors, note))
    }
    const warnings = [...(imported.notes ?? []), ...fileWarnings]

    const rootCid = root.cid.toString()
    const { kind, isAvatar, primaryPath } = classify([...fileSizes.keys()])
    const openImportPin = imported.importPin?.closed === false ? imported.importPin : undefined
    return this.#underRoot(rootCid, async () => this.#journaled(rootCid, async (intent) => {
      // Under the root's lock, so that a list changing meanwhile cannot let it through past a take-down.
      this.#refuseBlocked(owner, root.cid, nodes)
      await backend.pin(root.cid, { imported: imported.lease })
      try {
        const size = sum(fileSizes.values())
        const { upload, created } = await uploads.insert({
          identityId: owner.id,
          name: name.rootName,
          rootCid,
          kind,
          size,
          isAvatar,
          primaryPath,
          warnings,
          avatarReport: isAvatar ? buildAvatarReport(primaryPath, reports, fileSizes) : null,
          entries: toEntries(nodes, fileSizes)
        }, {
          // Recorded, the root is no longer blocked (the check above let it through) and the journal rows are settled, in one transaction.
          settles: intent.id,
          alsoLifts: rootForms(rootCid),
          ...(openImportPin === undefined ? {} : { closesImportPin: openImportPin.id }),
          ...(quotas === undefined ? {} : { quota: { ...quotas.defaults, refuse: (status) => quotas.refusal(status, size) } })
        })
        intent.settled = true
        if (openImportPin !== undefined) this.#importPinClosed(openImportPin)
        return { upload, created, items: toAddedItems(name.rootName, nodes) }
      } catch (err) {
        // Whether anything else holds the root, or the unpin, may be unknown now (the database or the node away):
        // the journal row then stays, and settling it decides later. So when the database did not answer the insert:
        // a statement given up on, or whose connection broke, may still commit (settling the journal row with it),
        // and unpinning now would leave a recorded upload without its content.
        const referenced = isDatabaseUnavailable(err) ? undefined : await this.#referenced(rootCid).catch(() => undefined)
        if (referenced === undefined) intent.keep = true
        else if (referenced === 0) {
          await backend.unpin(root.cid).catch((unpinErr: unknown) => {
            intent.keep = true
            this.#options.logger.error({ err: unpinErr, rootCid }, 'could not release the pin of a failed upload: left to the pin journal')
          })
        }
        throw err
      }
    }))
  }

  /**
   * Runs a change of `rootCid`'s pin between a journal row written before it
   * and removed after it: if the process dies in between, `settlePins` finds
   * the row and leaves the root pinned exactly when an upload references it.
   * Work that removes the row itself, in the transaction that records what
   * the pin is for, marks it `settled`; work that could not bring the pin to
   * where it should be (the node or the database away) marks it `keep`, and
   * so does any failure but a refusal (a 4xx, after which the pin is as the
   * work left it): the row stays for `settlePins`, which runs every few
   * minutes, so a pin is never left behind with nothing to say why.
   */
  async #journaled<T> (rootCid: string, work: (intent: JournalEntry) => Promise<T>): Promise<T> {
    const { pinIntents, instanceId, logger } = this.#options
    const intent: JournalEntry = { id: await pinIntents.add(rootCid, instanceId), settled: false, keep: false }
    // Under the root's lock: the one work of this process on the root, whose own row is not another's (#referenced).
    this.#working.set(rootKey(rootCid), intent.id)
    try {
      return await work(intent)
    } catch (err) {
      if (!(err instanceof HeimdallError && err.status < 500)) intent.keep = true
      throw err
    } finally {
      this.#working.delete(rootKey(rootCid))
      // A row that cannot be removed now is settled later; it is never wrong to keep one.
      if (!intent.settled && !intent.keep) await pinIntents.remove(intent.id).catch((err: unknown) => { logger.warn({ err, rootCid }, 'could not clear a pin journal row') })
    }
  }

  #refuseBlocked (owner: Identity, root: CID, nodes: readonly ImportedNode[]): void {
    this.#refuseListed(root, nodes, { identityId: owner.id })
  }

  #refuseListed (root: CID, nodes: readonly ImportedNode[], who: Record<string, unknown>): void {
    if (this.#options.denylist === undefined) return
    const blocked = blockedContent(this.#options.denylist, root, nodes)
    if (blocked === undefined) return
    this.#options.logger.warn({ rootCid: root.toString(), ...who, rule: blocked.rule.text, list: blocked.file }, 'refused: the content is on a denylist')
    throw new ContentBlockedError('this content is blocked on this node by its operator', 403)
  }

  /** Runs `work` under the root's lock, one lock for both spellings of a root (see cid-forms.ts). */
  async #underRoot<T> (root: string | CID, work: () => Promise<T>): Promise<T> {
    return this.#lock.run(rootKey(root), work)
  }

  /**
   * How many uploads and other holders (pin requests, the operator's pins)
   * reference `rootCid`, in either CID version; none when a denylist took it
   * down. Journal rows of other work on the root count too (not the row of
   * the work asking, under the root's lock, nor `settling`): work whose
   * outcome is unknown (a statement the database was given up on may commit
   * after its request's 503, and settles its row when it does) may yet hold
   * it, so the pin stays until settlePins has settled that row.
   */
  async #referenced (rootCid: string, settling?: number): Promise<number> {
    const forms = rootForms(rootCid)
    if (await this.#options.blockedRoots?.isBlocked(forms) === true) return 0
    const [recorded, others, unsettled] = await Promise.all([
      this.#countRecorded(forms),
      this.#options.otherReferences?.countHolding(forms) ?? 0,
      this.#options.pinIntents.countOthers(forms, [this.#working.get(rootKey(rootCid)), settling])
    ])
    return recorded + others + unsettled
  }

  /**
   * Runs `work`, a change of `rootCid`'s pin made outside an upload (a pin
   * request), under the same per-root lock and pin journal as uploads: a
   * crash in the middle is settled at the next start like an upload's.
   */
  async changePin<T> (rootCid: string, work: (intent: JournalEntry) => Promise<T>): Promise<T> {
    return this.#underRoot(rootCid, async () => this.#journaled(rootCid, work))
  }

  /**
   * `npm run admin -- unpin`: ends the operator's pin of `rootCid` (either
   * spelling); the content is unpinned, and collected later, unless an
   * upload or a pin request still holds it.
   */
  async releaseOperatorPin (rootCid: string): Promise<{ removed: boolean, unpinned: boolean, deferred?: boolean }> {
    return this.changePin(rootCid, async (intent) => {
      const removed = await this.#options.operatorPins?.remove(rootForms(rootCid)) ?? 0
      if (removed === 0) return { removed: false, unpinned: false }
      const unpinned = await this.releaseIfUnreferenced(rootCid, intent)
      // Nothing holds it, but the node did not take the unpin: the pin journal releases it later.
      return intent.keep ? { removed: true, unpinned, deferred: true } : { removed: true, unpinned }
    })
  }

  /**
   * Inside `changePin`: removes the journal rows other work left for
   * `rootCid` (see #referenced), whose outcome is unknown: a record of
   * theirs that still commits then fails, as it needs its row (the
   * heimdall_record_upload function), so that what this work decides about
   * the pin holds (a take-down: the block and the unpin).
   */
  async fenceOthers (rootCid: string): Promise<void> {
    await this.#options.pinIntents.removeOthers(rootForms(rootCid), [this.#working.get(rootKey(rootCid))])
  }

  /**
   * Inside `changePin`: unpins `rootCid` when no upload and no other holder
   * references it any more; true when it did. Given the journal entry of
   * work whose record is already changed (a request deleted), an unpin the
   * node refuses now is logged and left to the journal instead of failing
   * that work.
   */
  async releaseIfUnreferenced (rootCid: string, journal?: JournalEntry): Promise<boolean> {
    if (await this.#referenced(rootCid) !== 0) return false
    try {
      await this.#options.backend.unpin(CID.parse(rootCid))
    } catch (err) {
      if (journal === undefined) throw err
      journal.keep = true
      this.#options.logger.error({ err, rootCid }, 'could not unpin content nothing holds any more: left to the pin journal')
      return false
    }
    this.#options.collector?.request('content released')
    return true
  }

  /**
   * Settles the pin journal rows of work that no process is doing any more
   * (at start-up: all of this instance's; later: its own older than ten
   * minutes, anyone's older than an hour): a root stays pinned if an upload
   * references it, else it is unpinned and its blocks are collected.
   */
  async settlePins (options: { startup?: boolean, signal?: AbortSignal } = {}): Promise<number> {
    const { pinIntents, instanceId, backend, logger } = this.#options
    const now = Date.now()
    const ownBefore = new Date(options.startup === true ? now + 1000 : now - 10 * 60_000)
    const anyBefore = new Date(now - 60 * 60_000)
    const intents = await pinIntents.unsettled(instanceId, ownBefore, anyBefore)
    let released = 0
    for (const intent of intents) {
      if (options.signal?.aborted === true) break
      // One root the node cannot unpin now keeps its row (and its pin) for the next time, not the others'; a node that
      // cannot be reached at all ends the pass.
      const unavailable = await this.#underRoot(intent.rootCid, async () => {
        if (await this.#referenced(intent.rootCid, intent.id) === 0) {
          await backend.unpin(CID.parse(intent.rootCid))
          released++
        }
        await pinIntents.remove(intent.id)
        return false
      }).catch((err: unknown) => {
        logger.warn({ err, rootCid: intent.rootCid }, 'could not settle a pin journal row: tried again later')
        return err instanceof ServiceUnavailableError
      })
      if (unavailable) break
    }
    released += await this.#settleImportPins(ownBefore, anyBefore, options)
    if (released > 0) {
      logger.info({ released, settled: intents.length }, 'released the pins of uploads a crash interrupted')
      this.#options.collector?.request('settled pins')
    }
    return released
  }

  /**
   * Settles the journal rows of imports that pinned in the add (see
   * IpfsBackend.importPins) and were neither recorded nor dropped: the pin
   * is found by its name, kept if anything references its root, else
   * released. This process's imports under way are left alone; another
   * instance's after an hour are not (an add that long, its row settled
   * before it pins, loses only its protection against a crash of its own).
   */
  async #settleImportPins (ownBefore: Date, anyBefore: Date, options: { signal?: AbortSignal }): Promise<number> {
    const { pinIntents, instanceId, backend, logger } = this.#options
    if (backend.importPins === undefined) return 0
    const rows = (await pinIntents.unsettledImportPins(instanceId, ownBefore, anyBefore)).filter((row) => !this.#importing.has(row.id))
    if (rows.length === 0) return 0
    // One listing for every row: Kubo reads every pin's name to filter them.
    const named = new Map<string, CID[]>()
    const signal = AbortSignal.any([...(options.signal === undefined ? [] : [options.signal]), AbortSignal.timeout(5 * 60_000)])
    try {
      for await (const pin of backend.importPins.named(IMPORT_PIN_PREFIX, { signal })) {
        const roots = named.get(pin.name)
        if (roots === undefined) named.set(pin.name, [pin.cid]); else roots.push(pin.cid)
      }
    } catch (err) {
      logger.warn({ err }, 'could not list the pins of interrupted imports: tried again later')
      return 0
    }
    let released = 0
    for (const row of rows) {
      if (options.signal?.aborted === true) break
      try {
        for (const root of named.get(row.pinName) ?? []) {
          const rootCid = root.toString()
          await this.#underRoot(rootCid, async () => {
            if (await this.#referenced(rootCid) > 0) return
            await backend.unpin(root)
            released++
          })
        }
        await pinIntents.removeImportPin(row.id)
      } catch (err) {
        logger.warn({ err, pinName: row.pinName }, 'could not settle the pin of an interrupted import: tried again later')
        if (err instanceof ServiceUnavailableError) break
      }
    }
    return released
  }

  /**
   * Pins again every root the database holds (see HeldRootRepository) that
   * the node has no pin for: at start-up, before the first collection, which
   * keeps only what is pinned. The node's pins and the database part ways
   * when uploads were made by the versions of 2026-11-24, which gave no pin
   * of its own to a root another pin already reached (Helia answered that it
   * was pinned); when an operator ran `ipfs pin rm` on Kubo; when
   * `DATA_DIR/ipfs` is restored from an older backup than the database. A
   * root is pinned only if every block of it is still here (asked of this
   * node only, never fetched); one that is not is logged as an error and left
   * as it is. A root a denylist took down stays unpinned. Any other failure
   * stops the start, as settling the journal does: a collection must not
   * run while a held root may lack its pin.
   */
  async restorePins (): Promise<{ restored: string[], incomplete: string[] }> {
    const { backend, heldRoots, logger } = this.#options
    const result = { restored: [] as string[], incomplete: [] as string[] }
    if (heldRoots === undefined) return result
    const pinned = new Set<string>()
    // A node that does not answer stops the start with an error rather than holding it.
    for await (const cid of backend.listPins({ signal: AbortSignal.timeout(5 * 60_000) })) pinned.add(rootKey(cid))
    for (let after = '', page = await heldRoots.page(after, 5000); page.length > 0; after = page.at(-1) ?? '', page = await heldRoots.page(after, 5000)) {
      for (const rootCid of page) {
        if (pinned.has(rootKey(rootCid))) continue
        await this.changePin(rootCid, async () => {
          const root = CID.parse(rootCid)
          if (await this.#referenced(rootCid) === 0 || await backend.isPinned(root)) return
          const dag = await inspectLocalDag(backend, root, Number.POSITIVE_INFINITY)
          if (dag.state !== 'complete') {
            result.incomplete.push(rootCid)
            const why = dag.state === 'missing' ? { missing: dag.missing.toString() } : { dag: dag.state }
            logger.error({ rootCid, ...why }, dag.state === 'missing' ? 'held content has no pin and is not all here any more: not pinned again' : 'held content has no pin and is not a UnixFS DAG this node can check: not pinned again')
            return
          }
          await backend.pin(root)
          pinned.add(rootKey(root))
          result.restored.push(rootCid)
        })
      }
    }
    if (result.restored.length > 0) logger.warn({ restored: result.restored.length, roots: result.restored.slice(0, 20) }, 'pinned again content the database holds that had no pin')
    return result
  }

  /**
   * Deletes one of the owner's uploads. Its root is unpinned only when no
   * upload, of anyone, still references it; under the same per-root lock as
   * commit, so a concurrent upload of the same content keeps its pin.
   */
  async remove (owner: Identity, uploadId: number): Promise<Upload> {
    const { uploads } = this.#options
    const upload = await uploads.findOwned(owner.id, uploadId)
    if (upload === undefined) throw new NotFoundError(`you have no upload ${uploadId}`)
    await this.#underRoot(upload.rootCid, async () => this.#journaled(upload.rootCid, async (intent) => {
      if (!(await uploads.deleteOwned(owner.id, uploadId))) throw new NotFoundError(`you have no upload ${uploadId}`)
      // The record is gone either way: a pin that cannot be released now is left to the journal, not returned as a failure.
      await this.releaseIfUnreferenced(upload.rootCid, intent)
    }))
    return upload
  }

  /** The owner's uploads, newest first, and how many there are in all. */
  async list (owner: Identity, page: { limit: number, offset: number, search?: string }): Promise<{ uploads: Upload[], total: number }> {
    const [uploads, total] = await Promise.all([
      this.#options.uploads.listByOwner(owner.id, page),
      this.#options.uploads.countByOwner(owner.id, page.search)
    ])
    return { uploads, total }
  }

  /** The same list, one upload at a time (with its files), for answers that stream. */
  listStream (owner: Identity, page: { limit: number, offset: number, search?: string }): AsyncIterable<Upload> {
    return this.#options.uploads.streamByOwner(owner.id, page)
  }

  async count (owner: Identity, search?: string): Promise<number> {
    return this.#options.uploads.countByOwner(owner.id, search)
  }

  async get (owner: Identity, uploadId: number): Promise<Upload> {
    const upload = await this.#options.uploads.findOwned(owner.id, uploadId)
    if (upload === undefined) throw new NotFoundError(`you have no upload ${uploadId}`)
    return upload
  }

  async #import (name: UploadName, candidates: Iterable<ImportCandidate>, signal?: AbortSignal): Promise<ImportedUpload> {
    // Every file's bytes pass its inspector on their way into the importer: one read, no second pass.
    const inspected: Array<{ inspector: FileInspector, bytes: number }> = []
    const gunzip = gunzipBudget()
    const tapped = [...candidates].map((candidate) => {
      if (candidate.content === undefined) return candidate
      const file = { inspector: inspectorFor(candidate.path, gunzip), bytes: 0 }
      inspected.push(file)
      return { path: candidate.path, content: tap(candidate.content, file, signal) }
    })
    const importPin = await this.#openImportPin()
    const lease = await this.#options.backend.openLease()
    try {
      const nodes = await this.#options.backend.importTree(tapped, { profile: this.#options.profile, signal, lease, ...(importPin === undefined ? {} : { pinName: importPin.pinName }) })
      const reports = inspected.map(({ inspector }) => inspector.end())
      const fileSizes = new Map(reports.map((report, i) => [report.path, inspected[i]?.bytes ?? 0]))
      return { name, nodes, reports, fileSizes, lease, ...(importPin === undefined ? {} : { importPin }) }
    } catch (err) {
      await lease.discard().catch((discardErr: unknown) => { this.#options.logger.warn({ err: discardErr }, 'could not remove the blocks of a failed import') })
      if (importPin !== undefined) {
        this.#importing.delete(importPin.id)
        // Cut short before the node had all of it (the client gone mid-upload), the add made no pin: the row goes. Else
        // it may have pinned before failing (its answer cut), and a cancelled add may still be ending in the node: the
        // row is left to settlePins, which looks for the pin by its name once the row is ten minutes old, counted from
        // now (an import that ran longer than that would otherwise be settled at once, before its add has ended).
        const { pinIntents, logger } = this.#options
        const settled = importMadeNoPin(err) ? pinIntents.removeImportPin(importPin.id) : pinIntents.touchImportPin(importPin.id)
        await settled.catch((journalErr: unknown) => { logger.warn({ err: journalErr }, 'could not update a pin journal row') })
      }
      throw isOutOfSpace(err) ? new InsufficientStorageError() : err
    }
  }
}

async function * tap (source: AsyncIterable<Uint8Array>, file: { inspector: FileInspector, bytes: number }, signal: AbortSignal | undefined): AsyncIterable<Uint8Array> {
  for await (const chunk of source) {
    // An abort (the client left) stops the import at the next chunk, whatever the source.
    signal?.throwIfAborted()
    file.inspector.write(chunk)
    file.bytes += chunk.byteLength
    yield chunk
  }
}

const sum = (values: Iterable<number>): number => { let total = 0; for (const v of values) total += v; return total }

/** The warning for a bundle's operating-system files left out (macOS's __MACOSX/ and .DS_Store, Windows' Thumbs.db). */
function skippedNote (skipped: readonly string[]): string {
  const listed = skipped.slice(0, 5).join(', ')
  return `left out ${skipped.length} file${skipped.length === 1 ? '' : 's'} the operating system added to the folder, not part of the model: ${listed}${skipped.length > 5 ? `, and ${skipped.length - 5} more` : ''}`
}

/** Entries for the database: files with their byte size, directories with the bytes of the files below them. */
function toEntries (nodes: readonly ImportedNode[], fileSizes: ReadonlyMap<string, number>): UploadEntry[] {
  const dirSizes = new Map<string, number>()
  for (const [path, bytes] of fileSizes) {
    for (let slash = path.indexOf('/'); slash !== -1; slash = path.indexOf('/', slash + 1)) {
      const dir = path.slice(0, slash)
      dirSizes.set(dir, (dirSizes.get(dir) ?? 0) + bytes)
    }
  }
  return nodes
    .filter((node) => node.path !== '')
    .map((node) => {
      const isDirectory = !fileSizes.has(node.path)
      return { path: node.path, cid: node.cid.toString(), size: (isDirectory ? dirSizes.get(node.path) : fileSizes.get(node.path)) ?? 0, isDirectory }
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
