import { UploadFailure, EXIT } from './exit-codes.ts'

/** One item of `POST /upload`'s answer: `ipfs add`'s list, the root last, which carries the extras. */
export interface AddedItem {
  Name: string
  Hash: string
  Size: string | number
  primary?: string | null
  kind?: string
  warnings?: string[]
  preview?: string | null
}

/** What a finished upload answered: the whole list (for `--json`) and its root. */
export interface UploadAnswer {
  items: AddedItem[]
  root: AddedItem
}

/** Parses a successful upload's answer; anything else is the server's fault, not the file's. */
export function parseAnswer (text: string): UploadAnswer {
  let body: unknown
  try { body = JSON.parse(text) } catch { body = undefined }
  const items = Array.isArray(body) ? body as AddedItem[] : []
  const root = items.at(-1)
  if (root === undefined || typeof root.Hash !== 'string') throw new UploadFailure('the server answered the upload without its list of added items', EXIT.unavailable, 200, text)
  return { items, root }
}

/** The link to open: the primary file's gateway URL, else the root directory on the server's gateway. */
export function primaryLink (answer: UploadAnswer, server: string): string {
  return answer.root.primary ?? new URL(`/ipfs/${answer.root.Hash}/`, server).href
}
