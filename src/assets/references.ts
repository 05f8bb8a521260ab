import type { FileReport, FstFacts, Reference } from './file-inspectors.ts'
import { classify } from './asset-kinds.ts'
import { baseNameOf, dirOf, fbxTextureRequest, objTextureRequest, resolveIn, textureBaseFor, type TextureBase } from './overte-rules.ts'

export interface ReferenceCheck {
  /** References whose absence means the upload cannot load (a missing avatar model, a glTF buffer). */
  errors: string[]
  warnings: string[]
}

/**
 * Resolves `target` relative to the referring file, as a URL is resolved:
 * `textures/a.png` from `avatars/x.fst` is `avatars/textures/a.png`.
 * Returns undefined for a path that leaves the upload.
 */
export function resolveReference (from: string, target: string, base = dirOf(from)): string | undefined {
  return resolveIn(base, target.replace(/\/+$/, ''))
}

/** The `.fst` files of an upload, as overte-rules.ts reads them. */
export const fstsOf = (reports: readonly FileReport[]): FstFacts[] => reports.flatMap((r) => r.fst === undefined ? [] : [r.fst])

/**
 * Checks every reference the inspectors found against what the upload
 * holds, looking each up where Overte will (overte-rules.ts). A reference
 * Overte will not find is a warning that says where Overte looks and how to
 * fix it; one warning per referenced file.
 */
export function checkReferences (reports: readonly FileReport[], files: ReadonlySet<string>, folders: ReadonlySet<string>, sizes?: ReadonlyMap<string, number>): ReferenceCheck {
  const errors: string[] = []
  const warnings: string[] = []
  const lowerFiles = new Map([...files].map((f) => [f.toLowerCase(), f]))
  // Looked up per reference, so built once: a bundle of many references and many files cost their product (a 1 MB zip
  // of 50,000 texture lines and 10,000 files held the server 38 s).
  const byBaseName = new Map<string, string>()
  for (const f of files) { const key = baseNameOf(f).toLowerCase(); if (!byBaseName.has(key)) byBaseName.set(key, f) }
  const fsts = fstsOf(reports)
  const textureBases = new Map<string, TextureBase>()
  const textureBase = (model: string): TextureBase => {
    let base = textureBases.get(model)
    if (base === undefined) textureBases.set(model, base = textureBaseFor(model, fsts))
    return base
  }
  // An MTL's textures use the texture base of the OBJ that loads it.
  const mtlOwners = new Map<string, string>()
  // The material files an .fst's materialMap names: only their textures are checked (other JSON may have `materials`).
  const materials = new Set<string>()
  // FBX files an animation graph plays as clips, and models an .fst loads: Overte reads a clip's joints and frames
  // only (AnimationCache.cpp, AnimationReader), never its textures, so a clip that is no avatar's model is not warned of them.
  const clips = new Set<string>()
  const models = new Set<string>()
  for (const report of reports) {
    for (const ref of report.references.flatMap((r) => { const c = composed(r); return c === r ? [r] : [r, c] })) {
      if (ref.what === 'material library') {
        const mtl = resolveReference(ref.from, ref.target)
        if (mtl !== undefined) mtlOwners.set(mtl, ref.from)
      }
      if (ref.what === 'material') {
        const file = resolveReference(ref.from, ref.target, ref.base)
        if (file !== undefined) materials.add(file)
      }
      if (ref.what === 'animation' || ref.what === 'model file') {
        const file = resolveReference(ref.from, ref.target, ref.base)
        if (file !== undefined) (ref.what === 'animation' ? clips : models).add(file)
      }
    }
  }

  // Played as a clip, and neither an .fst's model nor the upload's own link (its single model): Overte reads it only as
  // an animation.
  const primary = classify([...files]).primaryPath
  const clipOnly = (file: string): boolean => clips.has(file) && !models.has(file) && file !== primary
  const upload = { files, folders, lowerFiles, byBaseName, textureBase, mtlOwners }
  for (const report of reports) {
    warnings.push(...report.notes)
    if (!clipOnly(report.path)) warnings.push(...report.modelNotes ?? [])
    const seen = new Set<string>()
    for (const written of report.references) {
      if (written.ifMaterial === true && !materials.has(written.from)) continue
      if (written.rule === 'fbx-texture' && clipOnly(written.from)) continue
      const spelling = misspelt(written)
      if (spelling !== undefined && !seen.has(spelling)) { seen.add(spelling); warnings.push(spelling) }
      let ref = written
      let problem = unresolved(ref, upload)
      // A zip's names are stored composed (NFC), as models and most tools write them (macOS writes file names
      // decomposed): a name written decomposed that is found composed is warned, as Overte asks for it as written.
      // Found only that way, it is still not found by Overte: the reference's own severity decides.
      const nfc = problem === undefined ? written : composed(written)
      if (nfc !== written && unresolved(nfc, upload) === undefined) {
        ref = nfc
        problem = `${ref.from}: ${ref.what} "${ref.target}" is written in decomposed Unicode (NFD, as macOS names files), and the upload's file is named composed (NFC): Overte asks for it as written and will not find it; write the name composed`
      }
      if (problem === undefined) {
        const mismatch = wrongSize(ref, sizes)
        if (mismatch !== undefined && !seen.has(mismatch)) { seen.add(mismatch); warnings.push(mismatch) }
        continue
      }
      if (seen.has(problem)) continue
      seen.add(problem)
      ;(ref.severity === 'error' ? errors : warnings).push(problem)
    }
  }
  return { errors, warnings }
}

/** The reference with its target composed (NFC); the same object when it was already. */
function composed (ref: Reference): Reference {
  const target = ref.target.normalize('NFC')
  return target === ref.target ? ref : { ...ref, target }
}

interface Upload {
  files: ReadonlySet<string>
  folders: ReadonlySet<string>
  lowerFiles: ReadonlyMap<string, string>
  /** The first file of each base name, lower-cased. */
  byBaseName: ReadonlyMap<string, string>
  /** The texture base of a model (textureBaseFor), remembered per model. */
  textureBase: (model: string) => TextureBase
  mtlOwners: ReadonlyMap<string, string>
}

/**
 * A reference Overte reads as a URL differently than as a path: outside FBX
 * texture names (FBXSerializer turns `\\` into `/` first), a backslash is
 * part of the name to QUrl, not a folder separator; and anywhere, `#` and `?`
 * start a URL's fragment and query (NetworkMaterial resolves the name as a
 * URL), so the file is asked for by a shorter name.
 */
function misspelt (ref: Reference): string | undefined {
  const where = `${ref.from}: ${ref.what} "${ref.target}"`
  // As written: a glTF URI's %23 is a # in the file's name, which is fine.
  if (/[#?]/.test(ref.written ?? ref.target)) return `${where} has # or ? in its name, which Overte reads as the start of a URL's fragment or query, so it asks for another file: rename it without them`
  if (ref.rule !== 'fbx-texture' && (ref.written ?? ref.target).includes('\\')) return `${where} is written with backslashes, which Overte reads as part of the name, not as folders: write it with /`
  return undefined
}

/**
 * A found file whose size is not the one the referring file gives: Overte's
 * glTF reader refuses a buffer whose length is not its byteLength
 * (GLTFSerializer.cpp, readBinary: "Buffer size mismatch"), and the model
 * then does not load. A warning: other viewers load it.
 */
function wrongSize (ref: Reference, sizes: ReadonlyMap<string, number> | undefined): string | undefined {
  if (ref.size === undefined || sizes === undefined) return undefined
  const resolved = resolveReference(ref.from, ref.target, ref.base)
  const actual = resolved === undefined ? undefined : sizes.get(resolved)
  if (actual === undefined || actual === ref.size) return undefined
  return `${ref.from}: ${ref.what} "${ref.target}" is ${actual} bytes where its byteLength says ${ref.size}: Overte refuses a buffer of another length, so the model will not load there; export again, or correct byteLength`
}

/** "beside spider.fbx" or "in textures/ (avatar.fst's texdir)". */
function describeBase (base: TextureBase, model: string): string {
  if (base.source === 'texdir') return `in "${base.dir === '' ? '.' : base.dir ?? base.texdir ?? ''}/" (the texdir of ${base.fst ?? 'the .fst'})`
  return `beside ${model}`
}

function unresolved (ref: Reference, upload: Upload): string | undefined {
  const where = `${ref.from}: ${ref.what} "${ref.target}"`
  if (ref.folder === true) {
    const resolved = resolveReference(ref.from, ref.target, ref.base)
    return resolved !== undefined && (resolved === '' || upload.folders.has(resolved)) ? undefined : `${where} is not a folder in the upload`
  }
  if (ref.rule === 'fbx-texture' || ref.rule === 'obj-texture') return unresolvedTexture(ref, upload)
  const resolved = resolveReference(ref.from, ref.target, ref.base)
  if (resolved !== undefined && upload.files.has(resolved)) return undefined
  if (resolved === undefined) return `${where} points outside the upload`
  const otherCase = upload.lowerFiles.get(resolved.toLowerCase())
  if (otherCase !== undefined) return `${where} is not in the upload; "${otherCase}" differs only in letter case, and links are case-sensitive`
  return `${where} is not in the upload`
}

/** A model's texture: requested from the texture base (beside the model, or the `.fst` texdir), by base name for FBX. */
function unresolvedTexture (ref: Reference, upload: Upload): string | undefined {
  const model = ref.rule === 'obj-texture' ? upload.mtlOwners.get(ref.from) ?? ref.from : ref.from
  const base = upload.textureBase(model)
  const request = ref.rule === 'fbx-texture' ? fbxTextureRequest(ref.target, base) : objTextureRequest(ref.target, base)
  if (request !== undefined && upload.files.has(request)) return undefined
  const name = baseNameOf(ref.target.replaceAll('\\', '/'))
  const where = `${ref.from}: texture "${ref.target}"`
  const looks = ref.rule === 'fbx-texture'
    ? `Overte looks for "${name}" ${describeBase(base, model)}${base.source === 'model' ? ' (it ignores the folders an FBX stores)' : ''}`
    : `Overte looks for "${request ?? ref.target}" ${base.source === 'texdir' ? describeBase(base, model) : `relative to ${model}`}`
  if (request === undefined) return `${where} points outside the upload; ${looks}`
  const otherCase = upload.lowerFiles.get(request.toLowerCase())
  if (otherCase !== undefined) return `${where}: "${otherCase}" differs only in letter case from "${request}", and links are case-sensitive; rename the file`
  const found = upload.byBaseName.get(name.toLowerCase())
  if (found !== undefined) {
    const fix = base.source === 'texdir'
      ? `move "${found}" into "${base.dir === '' ? '.' : base.dir ?? ''}/"`
      : `move "${baseNameOf(found)}" beside ${baseNameOf(model)}, or add an .fst with texdir = ${dirOf(found) === dirOf(model) ? '.' : relativeDir(dirOf(model), dirOf(found))}`
    const caseNote = baseNameOf(found) !== name ? ` (whose name also differs in letter case from "${name}")` : ''
    return `${where} will not load in Overte: ${looks}, but the upload has it at "${found}"${caseNote}; ${fix}`
  }
  return `${where} is not in the upload; ${looks}`
}

/** `to` relative to `from`, both upload folders. */
function relativeDir (from: string, to: string): string {
  const a = from === '' ? [] : from.split('/')
  const b = to === '' ? [] : to.split('/')
  let common = 0
  while (common < a.length && common < b.length && a[common] === b[common]) common++
  return [...a.slice(common).map(() => '..'), ...b.slice(common)].join('/') || '.'
}
