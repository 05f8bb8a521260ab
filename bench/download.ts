import { execFile } from 'node:child_process'
import { connect } from 'node:net'
import { promisify } from 'node:util'

const run = promisify(execFile)

/** The client's read buffer: the kernel copies each arrival into it, every byte, and it is reused. */
const READ_BUFFER = 1024 * 1024
const MAX_HEAD = 64 * 1024

export interface Download {
  /** Body bytes read from the socket. */
  bytes: number
  /** From the connect call to the last body byte read, in seconds. */
  seconds: number
}

/**
 * One GET of `url` over a fresh loopback connection, every byte of the body
 * read from the socket (drained into one reused buffer, nothing else done
 * with it unless `inspect` is given) and counted against the response's
 * Content-Length. The same client for every server measured, and a cheap
 * one: Node's HTTP client would copy each 64 KiB read into a new buffer and
 * pass it through its parser and a stream, costs that on two cores compete
 * with the server under test. `inspect` sees each piece of the body (e.g. to
 * hash it in an untimed round that checks the bytes).
 */
export async function download (url: string, inspect?: (bytes: Uint8Array) => void): Promise<Download> {
  const target = new URL(url)
  const buffer = Buffer.allocUnsafe(READ_BUFFER)
  const started = process.hrtime.bigint()
  return new Promise((resolve, reject) => {
    let head: Buffer | undefined = Buffer.alloc(0)
    let expected = -1
    let bytes = 0
    let ended = 0n
    let failure: Error | undefined
    const fail = (err: Error): void => { failure ??= err; socket.destroy() }
    const body = (piece: Uint8Array): void => {
      bytes += piece.length
      inspect?.(piece)
      if (bytes >= expected) { ended = process.hrtime.bigint(); socket.destroy() }
    }
    const socket = connect({
      host: target.hostname,
      port: Number(target.port),
      onread: {
        buffer,
        callback: (nread: number, into: Uint8Array): boolean => {
          if (head === undefined) { body(into.subarray(0, nread)); return true }
          head = Buffer.concat([head, into.subarray(0, nread)])
          const end = head.indexOf('\r\n\r\n')
          if (end === -1) {
            if (head.length > MAX_HEAD) fail(new Error(`${url}: no response head`))
            return true
          }
          const text = head.subarray(0, end).toString('latin1')
          const status = /^HTTP\/1\.1 (\d{3})/.exec(text)?.[1]
          const length = /\r\ncontent-length: *(\d+)/i.exec(text)?.[1]
          if (status !== '200' || length === undefined) { fail(new Error(`${url}: ${status ?? 'no status'}, ${length ?? 'no'} Content-Length`)); return false }
          expected = Number(length)
          const rest = head.subarray(end + 4)
          head = undefined
          if (rest.length > 0 || expected === 0) body(rest)
          return true
        }
      }
    })
    socket.once('connect', () => {
      socket.write(`GET ${target.pathname}${target.search} HTTP/1.1\r\nHost: ${target.host}\r\nConnection: close\r\n\r\n`)
    })
    socket.once('error', (err) => { failure ??= err })
    socket.once('close', () => {
      const seconds = Number(ended - started) / 1e9
      if (failure !== undefined) reject(failure)
      else if (bytes !== expected) reject(new Error(`${url}: ${bytes} of ${expected} bytes`))
      else resolve({ bytes, seconds })
    })
  })
}

/**
 * The same download with curl (`BENCH_CLIENT=curl`), a client written by
 * others, to check that the figures are not the Node client's: the body goes
 * to /dev/null after curl has read it from the socket, and curl reports its
 * own size and time (its start-up included, milliseconds in seconds).
 */
export async function curlDownload (url: string): Promise<Download> {
  const { stdout } = await run('curl', ['--silent', '--show-error', '--fail', '--output', '/dev/null', '--write-out', '%{size_download} %{time_total}', url])
  const [bytes = Number.NaN, seconds = Number.NaN] = stdout.trim().split(' ').map(Number)
  return { bytes, seconds }
}
