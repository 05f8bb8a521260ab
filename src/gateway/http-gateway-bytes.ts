import type { IncomingMessage } from 'node:http'
import type { Writable } from 'node:stream'
import { finished } from 'node:stream/promises'
import { HeimdallError, NotFoundError, ServiceUnavailableError } from '../errors.ts'
import { IPFS_IDLE_MS, idleBounded, idleWatch, nodeStalled } from '../ipfs/idle-bound.ts'
import { http } from '../node-http.ts'
import type { ByteWindow, ResolvedNode } from './content-reader.ts'
import { FlowWriter } from './flow-writer.ts'
import { rawHttpBody } from './raw-http-body.ts'

/** Bytes from Kubo handed to a response and not yet on its socket. */
const IN_FLIGHT = 1024 * 1024
/** From this many bytes on, a body comes over a socket of its own into pooled buffers (rawHttpBody); below, over the keep-alive agent. */
const RAW_FROM = 1024 * 1024

export interface GatewayBytes {
  read: (node: ResolvedNode, window: ByteWindow) => AsyncIterable<Uint8Array>
  writeTo: (node: ResolvedNode, window: ByteWindow, out: Writable) => Promise<void>
}

/**
 * File bytes from an IPFS node's own HTTP gateway (Kubo's, private to the
 * stack), by the file's CID so that it resolves no path, with a byte range.
 * Kubo streams its blocks out faster than its RPC `cat`, and there is one
 * stream per request instead of one call per block. `only-if-cached` makes
 * Kubo answer 412 rather than look for a root it does not hold.
 */
export function httpGatewayBytes (gatewayUrl: string, options: { idleMs?: number } = {}): GatewayBytes {
  /** How long Kubo may keep a read waiting for its answer or its next bytes (IPFS_IDLE_MS): a 503, or the body cut. */
  const idleMs = options.idleMs ?? IPFS_IDLE_MS
  const base = new URL(gatewayUrl)
  if (base.protocol !== 'http:') throw new Error('IPFS_GATEWAY_URL must be an http:// URL inside the stack')
  const agent = new http.Agent({ keepAlive: true, maxSockets: 256, maxFreeSockets: 64 })

  /** Kubo's answer for the window, its status checked: the body is exactly the window's bytes. */
  async function open (node: ResolvedNode, window: ByteWindow): Promise<IncomingMessage> {
    const { offset, length, signal } = window
    const url = new URL(`/ipfs/${node.cid.toString()}`, base)
    // The whole file is asked for plainly: Kubo serves a range through a seeker, the whole through a straight copy.
    const whole = offset === 0 && length === node.size
    const res = await new Promise<IncomingMessage>((resolve, reject) => {
      const req = http.request(url, {
        agent,
        signal,
        headers: { ...(whole ? {} : { Range: `bytes=${offset}-${offset + length - 1}` }), 'Cache-Control': 'only-if-cached' }
      }, (res) => { req.setTimeout(0); resolve(res) })
      // Until its answer's head: a socket quiet this long is a Kubo that stopped.
      req.setTimeout(idleMs, () => { req.destroy(nodeStalled()) })
      req.once('error', (err) => {
        const unavailable = new ServiceUnavailableError('the IPFS node cannot be reached; try again later')
        unavailable.cause = err
        reject(signal?.aborted === true || err instanceof HeimdallError ? err : unavailable)
      })
      req.end()
    })
    const status = res.statusCode ?? 0
    if (status === 200 && whole) return res
    if (status === 206 && !whole) return res
    res.destroy()
    if (status === 404 || status === 412) throw new NotFoundError(`${node.cid.toString()} not found on this node`)
    // A whole-file answer is right only when the whole file was asked for.
    throw new Error(`the IPFS gateway answered ${status} for a byte range of ${node.cid.toString()}`)
  }

  const short = (node: ResolvedNode, sent: number, length: number): Error => new Error(`the IPFS gateway sent ${sent} of ${length} bytes of ${node.cid.toString()}`)

  return {
    async * read (node, window) {
      if (window.length <= 0) return
      const res = await open(node, window)
      const abort = new AbortController()
      abort.signal.addEventListener('abort', () => { res.destroy() })
      try {
        let sent = 0
        for await (const chunk of idleBounded(res, idleMs, nodeStalled, abort)) {
          sent += (chunk as Buffer).length
          yield chunk as Buffer
        }
        if (sent !== window.length) throw short(node, sent, window.length)
      } finally {
        res.destroy()
      }
    },

    /** Kubo's body into the response as it arrives: each chunk written once, Kubo paused only when the client is slower. */
    async writeTo (node, window, out) {
      if (window.length <= 0) return
      const { offset, length, signal } = window
      if (length >= RAW_FROM) {
        const whole = offset === 0 && length === node.size
        const headers: Record<string, string> = { 'Cache-Control': 'only-if-cached', ...(whole ? {} : { Range: `bytes=${offset}-${offset + length - 1}` }) }
        await rawHttpBody(new URL(`/ipfs/${node.cid.toString()}`, base), headers, { status: whole ? 200 : 206, length }, out, signal, idleMs)
        return
      }
      const res = await open(node, window)
      const flow = new FlowWriter(out, IN_FLIGHT)
      let sent = 0
      // Paused for the client, Kubo is not the one keeping it waiting.
      const watch = idleWatch(idleMs, () => !res.isPaused(), () => { res.destroy(nodeStalled()) })
      res.on('data', (chunk: Buffer) => {
        sent += chunk.length
        watch.touch()
        if (!flow.write(chunk)) {
          res.pause()
          void flow.ready().then(() => res.resume())
        }
      })
      try {
        await finished(res)
      } finally {
        watch.stop()
        res.destroy()
      }
      if (sent !== window.length) throw short(node, sent, window.length)
    }
  }
}
