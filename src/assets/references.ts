import { posix } from 'node:path'
import type { FileReport, Reference } from './file-inspectors.ts'

export interface ReferenceCheck {
  /** References whose absence means the upload cannot load (a missing avatar model, a glTF buffer). */
  errors: string[]
  warnings: string[]
}

const baseName = (path: string): string => path.slice(path.lastIndexOf('/') + 1)

/**
 * Resolves `target` as a gateway would, relative to the referring file:
 * `textures/a.png` from `avatars/x.fst` is `avatars/textures/a.png`.
 * Returns undefined for a path that leaves the upload.
 */
export function resolveReference (from: string, target: string): string | undefined {
  const cleaned = target.replaceAll('\\', '/').replace(/\/+$/, '')
  if (cleaned.startsWith('/') || /^[a-z]:\//i.test(cleaned)) return undefined
  const joined = posix.normalize(posix.join(posix.dirname(from), cleaned))
  return joined === '..' || joined.startsWith('../') ? undefined : joined.replace(/^\.\/?/, '')
}

/** Checks every reference the inspectors found against what the upload holds. */
export function checkReferences (reports: readonly FileReport[], files: ReadonlySet<string>, folders: ReadonlySet<string>): ReferenceCheck {
  const errors: string[] = []
  const warnings: string[] = []
  const lowerFiles = new Map([...files].map((f) => [f.toLowerCase(), f]))
  const byBase = new Map<string, string>()
  for (const file of files) byBase.set(baseName(file).toLowerCase(), file)

  for (const report of reports) {
    warnings.push(...report.notes)
    for (const ref of report.references) {
      const problem = unresolved(ref, files, folders, lowerFiles, byBase)
      if (problem !== undefined) (ref.severity === 'error' ? errors : warnings).push(problem)
    }
  }
  return { errors, warnings }
}

function unresolved (ref: Reference, files: ReadonlySet<string>, folders: ReadonlySet<string>, lowerFiles: ReadonlyMap<string, string>, byBase: ReadonlyMap<string, string>): string | undefined {
  const resolved = resolveReference(ref.from, ref.target)
  const where = `${ref.from}: ${ref.what} "${ref.target}"`
  if (ref.folder === true) {
    return resolved !== undefined && (resolved === '' || folders.has(resolved)) ? undefined : `${where} is not a folder in the upload`
  }
  if (resolved !== undefined && files.has(resolved)) return undefined
  if (ref.byBaseName === true && byBase.has(baseName(ref.target.replaceAll('\\', '/')).toLowerCase())) return undefined
  if (resolved === undefined) return `${where} points outside the upload`
  const otherCase = lowerFiles.get(resolved.toLowerCase())
  if (otherCase !== undefined) return `${where} is not in the upload; "${otherCase}" differs only in letter case, and links are case-sensitive`
  return `${where} is not in the upload`
}
