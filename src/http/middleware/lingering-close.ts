import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { RequestHandler } from 'express'

export interface LingerLimits {
  /** The longest the rest of a body is read and thrown away after the answer (nginx's `lingering_time`, 30 s). */
  totalMs: number
  /** …and the longest it may pause meanwhile (nginx's `lingering_timeout`, 5 s). */
  idleMs: number
  /**
   * Connections lingering at once; past it one closes at once, as before.
   * Reading is the server's own work: a flood of refused uploads on
   * loopback kept a core busy (four connections read 21 GB in 30 s).
   */
  maxSockets: number
  /** …and per client address (`req.ip`: behind a proxy, with TRUST_PROXY), so that one client's trickles cannot take them all. */
  maxPerAddress: number
}

export const LINGER: LingerLimits = { totalMs: 30_000, idleMs: 5_000, maxSockets: 8, maxPerAddress: 2 }

/** Connections lingering now, with their client's address: ended at once on shutdown (closeLingering). */
const lingering = new Map<Socket, string>()
/** Set at shutdown: no new connection lingers. */
let stopping = false
/** Connections whose last answer said `Connection: close`: a request pipelined after it is not run (RFC 9112, 9.6). */
const closing = new WeakSet<Socket>()

/**
 * nginx's lingering close, for answers given before the request's body was
 * all read (a wrong token, a quota, a type refused, an upload too large)
 * that close the connection (the error handler's `Connection: close`).
 * A client that did not ask `Expect: 100-continue`, or did and sent its
 * body anyway (Python's http.client, requests, the Blender add-on's, most
 * scripts), is still sending; closing the socket with its bytes unread
 * makes the kernel reset the connection, and the client fails writing
 * ("broken pipe") without ever reading the answer. Instead the answer ends
 * with our FIN, and the rest of the body is read and thrown away until it
 * ends, the client closes, or `limits` run out; then the connection closes.
 * Not for a `429` (a client told to back off costs no reading), nor past
 * `maxSockets` at once or `maxPerAddress` for one client, nor once the
 * server is stopping. A kept-alive answer is left to Node, which reads
 * the rest of the body itself for the next request, as before.
 */
export function lingeringClose (limits: LingerLimits = LINGER): RequestHandler {
  return (req, res, next) => {
    if (closing.has(req.socket)) { req.socket.destroy(); return }
    res.once('prefinish', () => {
      // Node closes after this answer when it says so (or the client or server would not keep it alive).
      const closes = !res.shouldKeepAlive || /\bclose\b/i.test(String(res.getHeader('connection') ?? ''))
      if (req.complete || req.destroyed || !closes || res.statusCode === 429 || stopping || lingering.size >= limits.maxSockets) return
      const address = req.ip ?? req.socket.remoteAddress ?? ''
      if ([...lingering.values()].filter((other) => other === address).length >= limits.maxPerAddress) return
      linger(req, req.socket, address, limits)
    })
    next()
  }
}

/**
 * At shutdown: ends every lingering connection (their answers are sent; only
 * a client's leftover body is lost), and no answer given from now on lingers.
 */
export function closeLingering (): void {
  stopping = true
  for (const socket of lingering.keys()) socket.destroy()
}

function linger (req: IncomingMessage, socket: Socket, address: string, limits: LingerLimits): void {
  closing.add(socket)
  lingering.set(socket, address)
  // Whatever stopped reading the body (a parser given up on, a route that never began) no longer holds it.
  req.unpipe()
  req.resume()
  // Node ends an answer marked `Connection: close` with socket.destroySoon(): replaced, for this socket only, by a
  // half close (the answer and our FIN go out; allowHalfOpen keeps the socket reading).
  const destroySoon = socket.destroySoon.bind(socket)
  socket.destroySoon = () => { socket.end() }
  let seen = socket.bytesRead
  let quietSince = Date.now()
  const started = quietSince
  const timer = setInterval(() => {
    if (socket.bytesRead !== seen) { seen = socket.bytesRead; quietSince = Date.now() }
    const now = Date.now()
    if (now - started >= limits.totalMs || now - quietSince >= limits.idleMs) close()
  }, Math.max(10, Math.min(1000, limits.idleMs / 4)))
  timer.unref()
  const stop = (): void => {
    clearInterval(timer)
    lingering.delete(socket)
    socket.destroySoon = destroySoon
    socket.off('close', stop)
    socket.off('end', close)
    req.off('end', close)
  }
  // All of the body read, or the client done sending: nothing left unread to make a reset of the close.
  const close = (): void => { stop(); socket.destroy() }
  req.once('end', close)
  socket.once('end', close)
  socket.once('close', stop)
}
