import { Agent, request, type IncomingMessage } from 'node:http'
import { NotFoundError, ServiceUnavailableError } from '../errors.ts'
import type { ByteWindow, ResolvedNode } from './content-reader.ts'

/**
 * File bytes from an IPFS node's own HTTP gateway (Kubo's, private to the
 * stack), by the file's CID so that it resolves no path, with a byte range.
 * Kubo streams its blocks out faster than its RPC `cat`, and there is one
 * stream per request instead of one call per block. `only-if-cached` makes
 * Kubo answer 412 rather than look for a root it does not hold.
 */
export function httpGatewayBytes (gatewayUrl: string): (node: ResolvedNode, window: ByteWindow) => AsyncIterable<Uint8Array> {
  const base = new URL(gatewayUrl)
  if (base.protocol !== 'http:') throw new Error('IPFS_GATEWAY_URL must be an http:// URL inside the stack')
  const agent = new Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 })

  return async function * (node, window) {
    const { offset, length, signal } = window
    if (length <= 0) return
    const url = new URL(`/ipfs/${node.cid.toString()}`, base)
    // The whole file is asked for plainly: Kubo serves a range through a seeker, the whole through a straight copy.
    const whole = offset === 0 && length === node.size
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(url, {
        agent,
        signal,
        headers: { ...(whole ? {} : { Range: `bytes=${offset}-${offset + length - 1}` }), 'Cache-Control': 'only-if-cached' }
      }, resolve)
      req.once('error', (err) => {
        const unavailable = new ServiceUnavailableError('the IPFS node cannot be reached; try again later')
        unavailable.cause = err
        reject(signal?.aborted === true ? err : unavailable)
      })
      req.end()
    })
    try {
      const status = res.statusCode ?? 0
      if (status === 404 || status === 412) throw new NotFoundError(`${node.cid.toString()} not found on this node`)
      // A whole-file answer is right only when the whole file was asked for.
      if (status !== (whole ? 200 : 206)) throw new Error(`the IPFS gateway answered ${status} for a byte range of ${node.cid.toString()}`)
      let sent = 0
      for await (const chunk of res) {
        sent += (chunk as Buffer).length
        yield chunk as Buffer
      }
      if (sent !== length) throw new Error(`the IPFS gateway sent ${sent} of ${length} bytes of ${node.cid.toString()}`)
    } finally {
      res.destroy()
    }
  }
}
