import type { Request, RequestHandler } from 'express'
import { awaitingContinue } from '../expect-continue.ts'

/**
 * Closes the connection of a request whose body stops arriving for
 * `seconds` (a stalled or hostile client holding a socket, a temp file and
 * an import open: the server sets no overall request deadline, so that big
 * uploads take as long as they take). Only while the body is arriving: once
 * all of it is here, answering may take as long as the work does. Progress
 * is the socket's bytes read, looked at a few times per period, and time
 * the server itself has stopped reading (backpressure) never counts; the
 * routes take the close as the client leaving (temp file removed, import
 * dropped).
 * Node's own socket timeout is not used: it would also end a client waiting
 * for a slow answer, and it is the timer Node uses for keep-alive. nginx's
 * `client_body_timeout` does the same in front (the shipped configuration
 * sets it to the same 300 s). 0 turns it off.
 */
export function bodyIdleTimeout (seconds: number, onStalled?: (req: Request) => void): RequestHandler {
  const ms = seconds * 1000
  return (req, res, next) => {
    const hasBody = req.headers['transfer-encoding'] !== undefined || Number(req.headers['content-length'] ?? 0) > 0
    // A request already complete needs no watch, nor one already closed (its 'close' is past: the watch would never stop).
    if (ms <= 0 || !hasBody || req.complete || req.destroyed) { next(); return }
    const socket = req.socket
    let seen = socket.bytesRead
    let quietSince = Date.now()
    const timer = setInterval(() => {
      if (req.complete) { stop(); return }
      // The client waits for a 100 Continue the route has not asked for yet (it has not begun to read): not its silence.
      if (awaitingContinue.has(req)) { quietSince = Date.now(); return }
      // Paused: the server stopped reading (its import is slower than the client, or has not begun): not the client's silence.
      if (socket.bytesRead !== seen || socket.isPaused()) {
        seen = socket.bytesRead
        quietSince = Date.now()
        return
      }
      if (Date.now() - quietSince < ms) return
      stop()
      onStalled?.(req)
      socket.destroy()
    }, Math.max(100, Math.min(ms / 4, 10_000)))
    timer.unref()
    const stop = (): void => { clearInterval(timer) }
    req.once('end', stop)
    req.once('close', stop)
    res.once('close', stop)
    next()
  }
}
