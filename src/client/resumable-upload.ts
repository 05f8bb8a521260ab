import { Readable } from 'node:stream'
import { DetailedError, Upload, type HttpResponse } from 'tus-js-client'
import { parseAnswer, type UploadAnswer } from './added-items.ts'
import { EXIT, exitCodeFor, failureFromAnswer, UploadFailure } from './exit-codes.ts'
import { requestText } from './http-text.ts'
import { SequentialReader } from './sequential-reader.ts'
import type { UploadStateFile } from './upload-state.ts'
import type { UploadSource } from './upload-source.ts'

export interface ResumableOptions {
  /** The tus endpoint, absolute: `<server>/upload/resumable`. */
  endpoint: string
  token: string
  source: UploadSource
  state: UploadStateFile
  /** Bytes per PATCH at most (Infinity: what is left, in one request). */
  chunkSize: number
  /** Waits before each retry of a failed request, in milliseconds; when they run out the upload fails (and can be resumed later). */
  retryDelays: number[]
  onProgress: (sent: number) => void
  onNote: (message: string) => void
  signal: AbortSignal
}

/**
 * The tus 1.0.0 client is tus-js-client: creation, resuming from the
 * server's offset after a HEAD, retries with back-off, and a store of upload
 * URLs by fingerprint are what it is built for, and it is the reference
 * client the protocol's authors keep. Here it is given the source as ranges
 * read on demand (a file, or a bundle zipped as it is sent), and a state
 * file that outlives the process.
 */
export async function uploadResumable (options: ResumableOptions): Promise<UploadAnswer & { text: string }> {
  const { endpoint, token, source, state, signal } = options
  const reader = new SequentialReader(source.open)
  // The name is part of it: a run with another --name is another upload, not the resumption of one named otherwise.
  const fingerprint = `${source.fingerprint}@${endpoint}#${source.fileName}`
  const metadata: Record<string, string> = { filename: source.fileName }
  if (source.name !== undefined) metadata.name = source.name

  return new Promise((resolve, reject) => {
    if (signal.aborted) { reject(new UploadFailure('interrupted', EXIT.interrupted)); return }
    let resumedFrom: number | undefined
    // A file that changes while it is sent ends a range early: the run fails, named as such, and may be resumed
    // once the file is saved (it crashed the process before: found by review).
    // The upload cannot be resumed (the file's fingerprint changed with it): it is terminated, not left holding quota.
    const changed = (err: Error): void => {
      reader.close()
      upload.abort(true).catch(() => {}).finally(() => {
        reject(new UploadFailure(`${source.fileName} changed while it was sent (${err.message}): run the command again once it is saved`, EXIT.usage))
      })
    }
    const upload = new Upload(Buffer.alloc(0), {
      endpoint,
      // Accept: the last PATCH then answers what POST /upload answers (without it, 204 and a GET).
      headers: { Authorization: `Bearer ${token}`, Accept: 'application/json' },
      metadata,
      uploadSize: source.size,
      chunkSize: options.chunkSize,
      retryDelays: options.retryDelays,
      storeFingerprintForResuming: true,
      removeFingerprintOnSuccess: true,
      urlStorage: state,
      fingerprint: () => Promise.resolve(fingerprint),
      fileReader: {
        openFile: () => Promise.resolve({
          size: source.size,
          slice: (start: number, end: number) => {
            const range = reader.range(start, end)
            // The last bytes go only if no file was saved again meanwhile (sizes alone would not show it).
            const stream = Object.assign(end >= source.size ? Readable.from(endingUnchanged(range, source), { objectMode: false }) : range, { size: end - start })
            stream.once('error', changed)
            // tus-js-client reports the last bytes only with the answer, which comes after the server's import.
            if (end >= source.size) stream.once('end', () => { options.onProgress(source.size) })
            return Promise.resolve({ value: stream, done: end >= source.size })
          },
          close: () => { reader.close() }
        })
      },
      onProgress: (sent) => {
        if (resumedFrom === undefined) resumedFrom = sent
        options.onProgress(sent)
      },
      onShouldRetry: (err, attempt) => {
        const status = err.originalResponse?.getStatus() ?? 0
        const retry = !signal.aborted && (status === 0 || status >= 500 || status === 409 || status === 423 || status === 429)
        if (retry) options.onNote(`${status === 0 ? 'the connection failed' : `the server answered ${status}`}; retrying in ${((options.retryDelays[attempt] ?? 0) / 1000).toFixed(0)} s (${attempt + 1} of ${options.retryDelays.length})`)
        return retry
      },
      onSuccess: ({ lastResponse }) => {
        reader.close()
        finalAnswer(lastResponse, upload.url, token).then(resolve, reject)
      },
      onError: (err) => {
        reader.close()
        reject(failureOf(err))
      }
    })
    signal.addEventListener('abort', () => {
      // Not terminated: the server keeps what it has, and the state file says where, for the next run.
      upload.abort(false).finally(() => { reject(new UploadFailure('interrupted', EXIT.interrupted)) }).catch(() => {})
    }, { once: true })
    upload.findPreviousUploads().then(async (previous) => {
      const last = previous.sort((a, b) => b.creationTime.localeCompare(a.creationTime))[0]
      if (last?.uploadUrl !== null && last?.uploadUrl !== undefined) {
        // Asked here first: tus-js-client starts a new upload from byte 0 on any answer to its HEAD but 2xx and 423 (a
        // 502 while the server restarts behind nginx lost the progress), and forgets the upload on any 4xx (one run with
        // a wrong token lost it): found by review. Only "gone" lets it start again; anything else is retried, then failed.
        const still = await stillThere(last.uploadUrl, token, options)
        if (still) {
          options.onNote('resuming the upload an earlier run started')
          upload.resumeFromPreviousUpload(last)
        } else {
          await state.removeUpload(last.urlStorageKey)
        }
      }
      if (!signal.aborted) upload.start()
    }).catch((err: unknown) => { reader.close(); reject(err instanceof UploadFailure ? err : failureOf(err instanceof Error ? err : new Error(String(err)))) })
  })
}

/** A range's bytes, then a failure instead of its end if a file of the upload was saved again since it was measured. */
async function * endingUnchanged (range: Readable, source: UploadSource): AsyncGenerator<Buffer> {
  for await (const chunk of range) yield chunk as Buffer
  if (!await source.unchanged()) throw new Error('it was saved again while it was read')
}

/**
 * The last PATCH answers what `POST /upload` answers. An upload that was
 * complete when this run found it (the earlier run's last answer was lost)
 * ends on the HEAD instead: then the upload's URL gives the answer.
 */
async function finalAnswer (response: HttpResponse, url: string | null, token: string): Promise<UploadAnswer & { text: string }> {
  const text = response.getBody() ?? ''
  if (response.getStatus() === 200 && text.trim().startsWith('[')) return { ...parseAnswer(text), text }
  if (url === null) throw new UploadFailure('the server finished the upload without an answer', EXIT.unavailable)
  const answer = await ask('GET', url, token)
  if (answer.status !== 200) throw failureFromAnswer(answer.status, answer.text)
  return { ...parseAnswer(answer.text), text: answer.text }
}

/** One request to the upload's URL (the answer by GET, how far it got by HEAD), as the tus client's own would be sent. */
async function ask (method: 'GET' | 'HEAD', url: string, token: string): Promise<{ status: number, text: string }> {
  return requestText(url, method, { Authorization: `Bearer ${token}`, Accept: 'application/json', 'Tus-Resumable': '1.0.0' }).catch((err: unknown) => {
    throw new UploadFailure(`cannot reach the server: ${err instanceof Error ? err.message : String(err)}`, EXIT.unavailable)
  })
}

/**
 * Whether the upload an earlier run started is still on the server: true
 * for a 2xx, false for 404 or 410 (expired, terminated: start again);
 * the connection failing, 5xx, 423 and 429 are retried with the upload's
 * delays; anything else (401, 403) fails the run, the upload kept for the
 * next one.
 */
async function stillThere (url: string, token: string, options: Pick<ResumableOptions, 'retryDelays' | 'onNote' | 'signal'>): Promise<boolean> {
  for (let attempt = 0; ; attempt++) {
    options.signal.throwIfAborted()
    const { status } = await ask('HEAD', url, token).catch(() => ({ status: 0 }))
    if (status >= 200 && status < 300) return true
    if (status === 404 || status === 410) return false
    const transient = status === 0 || status >= 500 || status === 423 || status === 429
    const delay = options.retryDelays[attempt]
    if (!transient || delay === undefined) {
      if (transient) throw new UploadFailure(`the server ${status === 0 ? 'cannot be reached' : `answered ${status}`} when asked how far the upload got; run the same command again later to resume it`, EXIT.unavailable)
      throw new UploadFailure(`the server answered ${status} when asked how far the upload an earlier run started got${status === 401 || status === 403 ? ' (check the token)' : ''}; it is kept for the next run`, exitCodeFor(status), status)
    }
    options.onNote(`${status === 0 ? 'the connection failed' : `the server answered ${status}`} when asked how far the upload got; retrying in ${(delay / 1000).toFixed(0)} s (${attempt + 1} of ${options.retryDelays.length})`)
    await new Promise((resolve) => setTimeout(resolve, delay))
  }
}

/** tus-js-client's error as the command's: the server's answer when there was one, else the network. */
function failureOf (err: Error): UploadFailure {
  if (err instanceof UploadFailure) return err
  if (err instanceof DetailedError && err.originalResponse !== null && err.originalResponse !== undefined) {
    return failureFromAnswer(err.originalResponse.getStatus(), err.originalResponse.getBody() ?? '')
  }
  const cause = err instanceof DetailedError ? (err.causingError?.message ?? err.message) : err.message
  return new UploadFailure(`the upload could not be completed: ${cause}. Run the same command again to resume it.`, EXIT.unavailable)
}
