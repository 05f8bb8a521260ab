import type { IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { Readable, Transform } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { http } from '../node-http.ts'
import { parseAnswer, type UploadAnswer } from './added-items.ts'
import { EXIT, failureFromAnswer, UploadFailure } from './exit-codes.ts'
import type { UploadSource } from './upload-source.ts'

export interface MultipartOptions {
  server: string
  token: string
  source: UploadSource
  onProgress: (sent: number) => void
  signal: AbortSignal
}

/** Header values must be latin-1; the file name goes as UTF-8, as browsers send it, escaped where the form syntax needs. */
const quoted = (name: string): string => name.replace(/["\\\r\n]/g, (c) => encodeURIComponent(c))

/**
 * `POST /upload` as the Blender add-on and the page send it: one multipart
 * form, field `file`, streamed from disk (or from the zip as it is made),
 * with its exact Content-Length so that the server checks the quota before
 * a byte of the file. No resume: an interrupted upload starts over.
 */
export async function uploadMultipart (options: MultipartOptions): Promise<UploadAnswer & { text: string }> {
  const { server, token, source, onProgress, signal } = options
  const boundary = `heimdall-${crypto.randomUUID()}`
  const head = Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${quoted(source.fileName)}"\r\nContent-Type: application/octet-stream\r\n\r\n`)
  const tail = Buffer.from(`\r\n--${boundary}--\r\n`)
  const url = new URL('/upload', server)
  const send = url.protocol === 'https:' ? httpsRequest : http.request
  let sent = 0
  // Once the server has answered, what is still being sent is no progress.
  let answered = false
  const counter = new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      sent += chunk.length
      if (!answered) onProgress(Math.min(source.size, Math.max(0, sent - head.length)))
      callback(null, chunk)
    }
  })
  // Exactly the bytes announced: a file that shrinks while it is sent left the server waiting for the rest (the client
  // hung), one that grows broke the request (found by review); either is the command's error, named as such.
  let read = 0
  const changed = (why?: string): UploadFailure => new UploadFailure(`${source.fileName} changed while it was sent (${why ?? `${read} bytes read of the ${source.size} it had`}): run the command again once it is saved`, EXIT.usage)
  const body = Readable.from((async function * () {
    yield head
    try {
      for await (const chunk of source.open(0) as AsyncIterable<Buffer>) {
        read += chunk.length
        if (read > source.size) throw changed()
        yield chunk
      }
    } catch (err) {
      throw err instanceof UploadFailure ? err : changed(err instanceof Error ? err.message : String(err))
    }
    if (read !== source.size) throw changed()
    // Saved again in place (the same size, as an exporter writes over its file): the bytes sent are neither version.
    if (!await source.unchanged()) throw changed('it was saved again while it was read')
    yield tail
  })(), { objectMode: false })

  return new Promise((resolve, reject) => {
    if (signal.aborted) { reject(new UploadFailure('interrupted', EXIT.interrupted)); return }
    let started = false
    // Only the file's own failures (made UploadFailure above): the connection's errors reach the body too, through the
    // pipeline, and are the request's to report, after a moment for the server's answer (a wrong token was "changed").
    body.once('error', (err) => { if (!answered && err instanceof UploadFailure) reject(err) })
    const req = send(url, {
      method: 'POST',
      signal,
      headers: {
        Authorization: `Bearer ${token}`,
        Accept: 'application/json',
        'Content-Type': `multipart/form-data; boundary=${boundary}`,
        'Content-Length': String(head.length + source.size + tail.length),
        // The body goes once the server asks for it: a refusal before it (credentials, quota, size) is answered before a
        // byte is sent, instead of racing the broken pipe that follows it (the answer was lost to EPIPE: exit 4, not 3).
        Expect: '100-continue'
      }
    }, (res: IncomingMessage) => {
      answered = true
      clearTimeout(unasked)
      if (!started) body.destroy()
      const chunks: Buffer[] = []
      res.on('data', (chunk: Buffer) => { chunks.push(chunk) })
      res.on('error', (err) => { reject(new UploadFailure(`the connection failed: ${err.message}`, EXIT.unavailable)) })
      res.on('end', () => {
        // An answer is small JSON; the server may answer (an error) before it read the whole file.
        const text = Buffer.concat(chunks).toString('utf8')
        const status = res.statusCode ?? 0
        // Refused: nothing more to send (the rest of a large file held the process for seconds).
        if (status !== 200) { req.destroy(); body.destroy(); reject(failureFromAnswer(status, text)); return }
        try { resolve({ ...parseAnswer(text), text }) } catch (err) { reject(err instanceof Error ? err : new Error(String(err))) }
      })
    })
    req.on('error', (err: NodeJS.ErrnoException) => {
      if (signal.aborted || answered) return
      // A server that refuses before reading the whole file answers, then closes: give its answer a moment to arrive.
      setTimeout(() => {
        if (!answered) reject(new UploadFailure(`cannot reach ${url.origin}: ${err.code ?? err.message}`, EXIT.unavailable))
      }, err.code === 'ECONNREFUSED' ? 0 : 2000)
    })
    signal.addEventListener('abort', () => { reject(new UploadFailure('interrupted', EXIT.interrupted)) }, { once: true })
    // A server that refuses early closes the request: its answer, not the broken pipe, is what counts.
    const start = (): void => {
      if (started || answered) return
      started = true
      pipeline(body, counter, req).catch(() => { /* the answer or the request's error says what happened */ })
    }
    req.once('continue', start)
    // A server (or proxy) that never answers 100 gets the body after a second anyway, as RFC 9110 has clients do.
    const unasked = setTimeout(start, 1000)
    req.once('close', () => { clearTimeout(unasked) })
  })
}
