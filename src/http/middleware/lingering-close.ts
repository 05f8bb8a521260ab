import type { IncomingMessage } from 'node:http'
import type { Socket } from 'node:net'
import type { RequestHandler } from 'express'
import { awaitingContinue } from '../expect-continue.ts'

export interface LingerLimits {
  /** The longest the rest of a body is read and thrown away after the answer (nginx's `lingering_time`, 30 s). */
  totalMs: number
  /** …and the longest it may pause meanwhile (nginx's `lingering_timeout`, 5 s). */
  idleMs: number
}

export const LINGER: LingerLimits = { totalMs: 30_000, idleMs: 5_000 }

/**
 * nginx's lingering close, for answers given before the request's body was
 * all read (a wrong token, a quota, a type refused, an upload too large).
 * A client that did not ask `Expect: 100-continue` (Python's http.client,
 * requests, the Blender add-on's, most scripts) is still sending; closing
 * the socket with its bytes unread makes the kernel reset the connection,
 * and the client fails writing ("broken pipe") without ever reading the
 * answer. Instead the answer ends with our FIN, and the rest of the body is
 * read and thrown away until it ends or for `limits` at most; then the
 * connection closes. A kept-alive answer (Node then reads the rest of the
 * body itself, for the next request) is held to the same limits. A client
 * waiting for `100 Continue` sends no body: its connection closes at once.
 */
export function lingeringClose (limits: LingerLimits = LINGER): RequestHandler {
  return (req, res, next) => {
    res.once('prefinish', () => {
      if (req.complete || req.destroyed || awaitingContinue.has(req)) return
      linger(req, req.socket, limits)
    })
    next()
  }
}

function linger (req: IncomingMessage, socket: Socket, limits: LingerLimits): void {
  // Whatever stopped reading the body (a parser given up on, a route that never began) no longer holds it.
  req.unpipe()
  req.resume()
  // Node ends an answer marked `Connection: close` with socket.destroySoon(): replaced, for this socket only, by a
  // half close (the answer and our FIN go out; allowHalfOpen keeps the socket reading).
  const destroySoon = socket.destroySoon.bind(socket)
  let closeWhenRead = false
  socket.destroySoon = () => { closeWhenRead = true; socket.end() }
  let seen = socket.bytesRead
  let quietSince = Date.now()
  const started = quietSince
  const timer = setInterval(() => {
    if (socket.bytesRead !== seen) { seen = socket.bytesRead; quietSince = Date.now() }
    const now = Date.now()
    if (now - started >= limits.totalMs || now - quietSince >= limits.idleMs) { stop(); socket.destroy() }
  }, Math.max(10, Math.min(1000, limits.idleMs / 4)))
  timer.unref()
  const stop = (): void => {
    clearInterval(timer)
    socket.destroySoon = destroySoon
  }
  req.once('end', () => {
    stop()
    // All of it read: nothing left unread to make a reset of the close.
    if (closeWhenRead) socket.destroy()
  })
  socket.once('close', stop)
}
