import type { IncomingMessage, RequestListener, Server, ServerResponse } from 'node:http'

/** Requests whose `Expect: 100-continue` is not answered yet: their client waits before it sends the body. */
export const awaitingContinue = new WeakSet<IncomingMessage>()

/**
 * Answers `Expect: 100-continue` when the route starts reading the body,
 * not as the request arrives (Node's default): a request refused before
 * its body is read (credentials, a type not accepted, a quota, an offset)
 * gets its answer, and its client sends none of the body (RFC 9110,
 * 10.1.1). curl asks so for any body over 1 MB. "Starts reading" is the
 * request's first `_read`, which every consumer (a pipe, a parser, a
 * 'data' listener) makes; Node's own discarding of a body never read comes
 * after the answer, and sends nothing.
 */
export function continueWhenRead (server: Server, app: RequestListener): void {
  server.on('checkContinue', (req: IncomingMessage, res: ServerResponse) => {
    awaitingContinue.add(req)
    // eslint-disable-next-line @typescript-eslint/unbound-method
    const read = req._read
    req._read = function (this: IncomingMessage, size: number): void {
      req._read = read
      awaitingContinue.delete(req)
      if (!res.headersSent && !res.writableEnded) res.writeContinue()
      read.call(this, size)
    }
    app(req, res)
  })
}
