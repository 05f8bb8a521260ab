import { randomUUID } from 'node:crypto'
import type { Request } from 'express'
import multer from 'multer'
import { extensionOf } from '../assets/asset-kinds.ts'
import { UnsupportedMediaTypeError } from '../errors.ts'

export interface UploadReceiverOptions {
  tmpDir: string
  maxUploadBytes: number
  /** Extensions accepted at the top level of an upload. */
  acceptedExtensions: ReadonlySet<string>
  /**
   * Called when the file part begins, with the fields sent before it. It may
   * reject (bad credentials, say) so that nothing of the file is written.
   */
  beforeFile: (req: Request) => Promise<void>
}

/**
 * Receives exactly one file, field `file`, streaming it to a temp file under
 * `tmpDir` and never holding it in memory. multer removes the partial file
 * when a limit trips or the client goes away; the route removes it after use.
 */
export function uploadReceiver (options: UploadReceiverOptions) {
  return multer({
    storage: multer.diskStorage({
      destination: options.tmpDir,
      filename: (_req, _file, cb) => { cb(null, `upload-${randomUUID()}`) }
    }),
    // Browsers put raw UTF-8 in filename="…" without saying so.
    defParamCharset: 'utf8',
    limits: { fileSize: options.maxUploadBytes, files: 1, fields: 16, fieldSize: 8192, parts: 20, headerPairs: 50 },
    fileFilter: (req, file, cb) => {
      const ext = extensionOf(file.originalname.split(/[\\/]/).pop() ?? '')
      if (!options.acceptedExtensions.has(ext)) {
        cb(new UnsupportedMediaTypeError(`files of type "${ext === '' ? '(none)' : ext}" are not accepted`, [`accepted: ${[...options.acceptedExtensions].join(', ')}`]))
        return
      }
      options.beforeFile(req).then(() => { cb(null, true) }, (err: unknown) => { cb(err as Error) })
    }
  }).single('file')
}
