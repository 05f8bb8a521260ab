import type { IdentityRepository } from '../db/identity-repository.ts'
import { NotFoundError } from '../errors.ts'
import { baseName, type UploadName, type UploadService } from './upload-service.ts'

/** What an operator's CAR import did, as the CLI prints it. */
export interface CarImportReport {
  /** The pinned root: the CAR's root, or the directory a single-file root was wrapped in. */
  rootCid: string
  files: number
  /** Bytes of the files, as their UnixFS nodes declare them. */
  size: number
  /** The upload recorded for `--owner`; absent when the root was only pinned. */
  upload?: { id: number, owner: string, name: string, created: boolean }
}

export interface OperatorCarImportDeps {
  uploads: UploadService
  identities: Pick<IdentityRepository, 'findByUsername'>
}

/**
 * `npm run import-car`: a CAR from an operator, e.g. a pinset moved from
 * another node. Blocks are verified and the DAG checked complete as for an
 * upload; the names, limits and content checks that keep creators honest are
 * skipped. Recorded as an upload of `owner` when one is given, else as the
 * operator's pin (`actor`: who ran it), which holds the content as an
 * upload does (as `ipfs pin add` would keep it).
 */
export async function importCarAsOperator (deps: OperatorCarImportDeps, source: AsyncIterable<Uint8Array>, options: { fileName: string, owner?: string, actor?: string, signal?: AbortSignal }): Promise<CarImportReport> {
  const owner = options.owner === undefined ? undefined : await deps.identities.findByUsername(options.owner)
  if (options.owner !== undefined && owner === undefined) throw new NotFoundError(`there is no user "${options.owner}"`)
  const fileName = baseName(options.fileName) || 'import.car'
  const name: UploadName = { fileName, rootName: fileName.replace(/\.car$/i, '') || fileName, isBundle: false, isCar: true }
  const imported = await deps.uploads.importCar(name, source, { signal: options.signal, unchecked: true })
  const files = imported.fileSizes.size
  const size = [...imported.fileSizes.values()].reduce((a, b) => a + b, 0)
  if (owner === undefined) {
    const root = await deps.uploads.pinUnrecorded(imported, options.actor ?? 'operator')
    return { rootCid: root.cid.toString(), files, size }
  }
  const { upload, created } = await deps.uploads.commit(owner, imported)
  return { rootCid: upload.rootCid, files, size, upload: { id: upload.id, owner: owner.username, name: upload.name, created } }
}
