import { BadRequestError } from '../errors.ts'

const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/
const KEY = /^[^\s,]+$/

/**
 * Reads a tus `Upload-Metadata` header: comma-separated pairs of a key and,
 * after one space, its value in base64 (a key alone has an empty value).
 * Keys are unique; anything else is a 400.
 */
export function parseUploadMetadata (header: string | undefined): Map<string, string> {
  const metadata = new Map<string, string>()
  if (header === undefined || header.trim() === '') return metadata
  for (const pair of header.split(',')) {
    const [key = '', value, ...rest] = pair.trim().split(' ')
    if (!KEY.test(key) || rest.length > 0 || (value !== undefined && !BASE64.test(value))) {
      throw new BadRequestError('Upload-Metadata is malformed: send comma-separated "key base64value" pairs', [`at "${pair.trim().slice(0, 80)}"`])
    }
    if (metadata.has(key)) throw new BadRequestError(`Upload-Metadata names "${key}" twice`)
    metadata.set(key, value === undefined ? '' : Buffer.from(value, 'base64').toString('utf8'))
  }
  return metadata
}

/** The header's form of `metadata`, as HEAD gives it back. */
export function formatUploadMetadata (metadata: ReadonlyMap<string, string>): string {
  return [...metadata].map(([key, value]) => `${key} ${Buffer.from(value, 'utf8').toString('base64')}`).join(',')
}
