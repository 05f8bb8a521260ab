import type { IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { http } from '../node-http.ts'

/**
 * One request without a body, and its answer: status and text. With
 * node:http, as the uploads are sent (fetch refuses the ports on the Fetch
 * standard's blocked list, 10080, 6000…). Rejects with the connection's own
 * error, for the caller to name.
 */
export async function requestText (url: string | URL, method: 'GET' | 'HEAD', headers: Record<string, string>, signal?: AbortSignal): Promise<{ status: number, text: string }> {
  const send = new URL(url).protocol === 'https:' ? httpsRequest : http.request
  return new Promise((resolve, reject) => {
    const req = send(url, { method, headers, ...(signal === undefined ? {} : { signal }) }, (res: IncomingMessage) => {
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('end', () => { resolve({ status: res.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }) })
      res.on('error', reject)
    })
    req.on('error', reject)
    req.end()
  })
}
