import { connect } from 'node:net'
import type { Writable } from 'node:stream'
import { NotFoundError, ServiceUnavailableError } from '../errors.ts'
import { IPFS_IDLE_MS, idleWatch, nodeStalled } from '../ipfs/idle-bound.ts'
import { BLOCK_BUFFERS } from './buffer-pool.ts'
import { FlowWriter } from './flow-writer.ts'

/** Bytes handed to the response and not yet on its socket. */
const IN_FLIGHT = 2 * 1024 * 1024
/** Pooled read buffers one download may hold (being filled or being sent). */
const BUFFERS_PER_DOWNLOAD = 4
/** A response head longer than this is not Kubo's. */
const MAX_HEAD = 64 * 1024

/**
 * One GET to the stack's private IPFS gateway over a socket of its own,
 * its body written into `out`. Node's HTTP client reads 64 KiB at a time
 * into a new buffer each and hands each through the parser and a stream
 * event; here the kernel fills pooled 1 MiB buffers (as much as has
 * arrived), and each is written to the client once and given back when
 * sent. Only for a body of known length (the gateway's 200 or 206 with
 * Content-Length, as Kubo answers a file); anything else is refused before a
 * byte is written. 404 and 412 (only-if-cached) are a NotFoundError.
 */
export async function rawHttpBody (url: URL, headers: Record<string, string>, expect: { status: number, length: number }, out: Writable, signal?: AbortSignal, idleMs = IPFS_IDLE_MS): Promise<void> {
  signal?.throwIfAborted()
  const flow = new FlowWriter(out, IN_FLIGHT)
  let head: Buffer | undefined = Buffer.alloc(0)
  let remaining = expect.length
  /** Pooled buffers this download holds: the one being filled and those being sent. */
  let held = 0
  let paused = false
  let failure: Error | undefined

  await new Promise<void>((resolve, reject) => {
    const fail = (err: Error): void => { failure ??= err; socket.destroy() }
    const give = (buffer: Buffer): void => {
      BLOCK_BUFFERS.give(buffer)
      held--
    }
    const send = (buffer: Buffer, from: number, to: number): void => {
      const n = Math.min(to - from, remaining)
      remaining -= n
      flow.write(buffer.subarray(from, from + n), () => {
        give(buffer)
        if (paused && held < BUFFERS_PER_DOWNLOAD) { paused = false; watch.touch(); socket.resume() }
      })
      if (remaining === 0) socket.destroy()
    }
    const socket = connect({
      host: url.hostname,
      port: Number(url.port === '' ? 80 : url.port),
      onread: {
        buffer: () => { held++; return BLOCK_BUFFERS.take() },
        callback: (nread: number, buffer: Uint8Array): boolean => {
          watch.touch()
          const bytes = buffer as Buffer
          let from = 0
          if (head !== undefined) {
            head = Buffer.concat([head, bytes.subarray(0, nread)])
            const end = head.indexOf('\r\n\r\n')
            if (end === -1) {
              give(bytes)
              if (head.length > MAX_HEAD) fail(new Error('the IPFS gateway sent no response head'))
              return true
            }
            const error = checkHead(head.subarray(0, end).toString('latin1'), expect, url)
            from = end + 4 - (head.length - nread)
            head = undefined
            if (error !== undefined) { give(bytes); fail(error); return false }
          }
          // This read's buffer goes out (given back once sent) or back to the pool now.
          if (from < nread && remaining > 0) send(bytes, from, nread)
          else give(bytes)
          if (held < BUFFERS_PER_DOWNLOAD) return true
          paused = true
          return false
        }
      }
    })
    socket.setNoDelay(true)
    // Kubo keeping the read waiting (for its head or its next bytes), not this side paused for a slow client.
    const watch = idleWatch(idleMs, () => !paused, () => { fail(nodeStalled()) })
    const onAbort = (): void => { fail(signal?.reason instanceof Error ? signal.reason : new Error('aborted')) }
    signal?.addEventListener('abort', onAbort, { once: true })
    socket.once('connect', () => {
      const lines = Object.entries({ Host: url.host, ...headers, Connection: 'close' }).map(([name, value]) => `${name}: ${value}\r\n`).join('')
      socket.write(`GET ${url.pathname}${url.search} HTTP/1.1\r\n${lines}\r\n`)
    })
    socket.once('error', (err) => {
      if (head !== undefined && failure === undefined) {
        const unavailable = new ServiceUnavailableError('the IPFS node cannot be reached; try again later')
        unavailable.cause = err
        failure = unavailable
      } else {
        failure ??= err
      }
    })
    socket.once('close', () => {
      watch.stop()
      signal?.removeEventListener('abort', onAbort)
      if (failure !== undefined) reject(failure)
      else if (remaining > 0) reject(new Error(`the IPFS gateway sent ${expect.length - remaining} of ${expect.length} bytes of ${url.pathname}`))
      else resolve()
    })
    socket.resume()
  })
}

/** Why a response head is not the answer asked for, if it is not. */
function checkHead (text: string, expect: { status: number, length: number }, url: URL): Error | undefined {
  const [statusLine = '', ...lines] = text.split('\r\n')
  const status = Number(/^HTTP\/1\.[01] (\d{3})/.exec(statusLine)?.[1] ?? 0)
  if (status === 404 || status === 412) return new NotFoundError(`${url.pathname.slice('/ipfs/'.length)} not found on this node`)
  if (status !== expect.status) return new Error(`the IPFS gateway answered ${status} for ${url.pathname}`)
  let length: number | undefined
  for (const line of lines) {
    const colon = line.indexOf(':')
    const name = line.slice(0, colon).trim().toLowerCase()
    const value = line.slice(colon + 1).trim()
    if (name === 'transfer-encoding' && value.toLowerCase() !== 'identity') return new Error(`the IPFS gateway sent ${url.pathname} ${value}-encoded`)
    if (name === 'content-length') length = Number(value)
  }
  if (length !== expect.length) return new Error(`the IPFS gateway announced ${String(length)} bytes of ${url.pathname}, not ${expect.length}`)
  return undefined
}
