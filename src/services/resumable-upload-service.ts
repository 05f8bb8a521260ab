import { createHash, randomBytes } from 'node:crypto'
import { mkdir, open, readdir, rm, stat, type FileHandle } from 'node:fs/promises'
import { join } from 'node:path'
import { finished, PassThrough, Transform, Writable, type Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import type { Logger } from 'pino'
import type { Identity } from '../db/identity-repository.ts'
import type { Usage } from '../db/quota-repository.ts'
import type { ResumableUpload, ResumableUploadRepository } from '../db/resumable-upload-repository.ts'
import { ChecksumMismatchError, ClientClosedRequestError, ConflictError, InsufficientStorageError, isOutOfSpace, NotFoundError, PayloadTooLargeError, ServiceUnavailableError } from '../errors.ts'

export interface ResumableUploadServiceOptions {
  repository: ResumableUploadRepository
  /** DATA_DIR/resumable: one file per upload being received, named by its id. */
  dir: string
  /** This instance's name: the bytes of an upload are on the instance that created it. */
  instanceId: string
  /** An upload no byte reached for this long is removed; a finished one's answer is kept as long. */
  expirySeconds: number
  /** How often expired uploads and stray files are removed (also once at start). */
  sweepSeconds: number
  logger: Logger
  /** A long PATCH is made durable (fsync, offset recorded) every this many bytes, so a crash loses at most that much. */
  checkpointBytes?: number
}

const ID = /^[0-9a-f]{32}$/

/** What a request's bytes must hash to (tus's Upload-Checksum): node:crypto's name of the algorithm, and the digest. */
export interface UploadChecksum { algorithm: string, digest: Buffer }
const DEFAULT_CHECKPOINT_BYTES = 64 * 1024 * 1024

interface Holder {
  /** Stops the holder: a request still writing is stale once its client asks again (tus clients resume with HEAD). */
  abort: AbortController
  /** An import is not stopped: every byte is in, and its answer is kept for the client. */
  importing: boolean
  done: Promise<void>
}

/**
 * Writes into a file from `position` on, never holding more than the stream's
 * buffer; every `checkpointBytes` it fsyncs and calls `checkpoint` with the
 * offset reached. `settled()` waits for a write in flight when the pipeline
 * was torn down under it, so that `position` is exactly what is on disk.
 */
class PositionedFileWriter extends Writable {
  readonly #handle: FileHandle
  readonly #checkpointBytes: number
  readonly #checkpoint: (position: number) => Promise<void>
  #position: number
  #sinceCheckpoint = 0
  #inFlight: Promise<unknown> = Promise.resolve()

  constructor (handle: FileHandle, position: number, checkpointBytes: number, checkpoint: (position: number) => Promise<void>) {
    super({ highWaterMark: 1024 * 1024 })
    this.#handle = handle
    this.#position = position
    this.#checkpointBytes = checkpointBytes
    this.#checkpoint = checkpoint
  }

  get position (): number { return this.#position }

  override _writev (chunks: Array<{ chunk: Buffer }>, callback: (error?: Error | null) => void): void {
    const buffers = chunks.map((c) => c.chunk)
    const bytes = buffers.reduce((n, b) => n + b.length, 0)
    const work = (async () => {
      // A short write (the disk filling up) is continued from where it stopped: the next write then fails with the
      // file system's own error (ENOSPC, answered 507), and what was written is counted.
      let written = 0
      while (written < bytes) {
        const rest = written === 0 ? buffers : [Buffer.concat(buffers).subarray(written)]
        const { bytesWritten } = await this.#handle.writev(rest, this.#position + written)
        if (bytesWritten === 0) throw new Error(`no byte written of ${bytes - written}`)
        written += bytesWritten
      }
      this.#position += bytes
      this.#sinceCheckpoint += bytes
      if (this.#sinceCheckpoint >= this.#checkpointBytes) {
        this.#sinceCheckpoint = 0
        await this.#handle.datasync()
        await this.#checkpoint(this.#position)
      }
    })()
    this.#inFlight = work.catch(() => {})
    work.then(() => { callback() }, (err: unknown) => { callback(err as Error) })
  }

  override _write (chunk: Buffer, _encoding: BufferEncoding, callback: (error?: Error | null) => void): void {
    this._writev([{ chunk }], callback)
  }

  async settled (): Promise<void> {
    await this.#inFlight
  }
}

/**
 * What `source` (a request) carries, through a stream of its own that fails
 * if the request closes before its end: a pipeline that fails tears that
 * stream down, never the request, so a refusal (too many bytes, a full
 * disk) is still answered on its connection. Destroying the request closes
 * its socket: the client saw a reset instead of the answer.
 */
function spared (source: Readable & { complete?: boolean }): Readable {
  const through = new PassThrough()
  // `finished` also reports a request that closed before this was called (the client gone while the upload was looked
  // up or created): listening for its 'close' from here would wait for an event already past, and the write forever.
  const stopWatching = finished(source, { writable: false }, (err) => {
    // Closed before its body was all passed on: what was still buffered went with it (Node drops a request's unread
    // bytes when its connection closes, though they all arrived), so the write ends here with what it has.
    if (err === undefined || err === null || source.readableEnded) return
    through.destroy(new ClientClosedRequestError())
  })
  through.once('close', () => {
    source.unpipe(through)
    stopWatching()
  })
  source.pipe(through)
  return through
}

/** Passes at most `bytes` on; one more fails the stream with `PayloadTooLargeError` (nothing past it is written). */
function atMost (bytes: number): Transform {
  let total = 0
  return new Transform({
    transform (chunk: Buffer, _encoding, callback) {
      total += chunk.length
      if (total > bytes) { callback(new PayloadTooLargeError(`the request carries more than the ${bytes} bytes the upload lacks (Upload-Length)`)); return }
      callback(null, chunk)
    }
  })
}

/**
 * Uploads received in pieces (the tus protocol): a row per upload in the
 * database (owner, length, the offset durably written, the final answer)
 * and the bytes in a file under `dir` on the instance that created it. One
 * request at a time works on an upload (per instance, where its bytes are);
 * expired uploads are swept with their files.
 */
export class ResumableUploadService {
  readonly #options: ResumableUploadServiceOptions
  readonly #holders = new Map<string, Holder>()
  /** Stops imports and writes when the instance shuts down. */
  readonly #closing = new AbortController()
  #timer: NodeJS.Timeout | undefined
  #sweeping: Promise<void> | undefined

  constructor (options: ResumableUploadServiceOptions) {
    this.#options = options
  }

  get expirySeconds (): number { return this.#options.expirySeconds }
  /** Aborted when the instance shuts down. */
  get closing (): AbortSignal { return this.#closing.signal }

  pathOf (id: string): string {
    return join(this.#options.dir, id)
  }

  /** Creates the folder, removes what expired or was left by a process that died, and sweeps periodically from now on. */
  async start (): Promise<void> {
    await mkdir(this.#options.dir, { recursive: true })
    await this.sweep()
    this.#timer = setInterval(() => { void this.sweep() }, this.#options.sweepSeconds * 1000)
    this.#timer.unref()
  }

  async close (): Promise<void> {
    clearInterval(this.#timer)
    this.#closing.abort(new ServiceUnavailableError('the server is shutting down; resume the upload in a moment'))
    for (const holder of this.#holders.values()) holder.abort.abort(this.#closing.signal.reason)
    await Promise.all([...this.#holders.values()].map(async (h) => h.done))
    await this.#sweeping
  }

  #expiry (): Date {
    return new Date(Date.now() + this.#options.expirySeconds * 1000)
  }

  /**
   * A new, empty upload of `length` bytes for `owner`; `fileName` was checked by the caller; `metadata`: Upload-Metadata as sent, answered back by HEAD.
   * `admit` is given what the owner's other unfinished uploads declare and throws to refuse (see ResumableUploadRepository.create).
   */
  async create (owner: Identity, fileName: string, length: number, metadata: string | null = null, admit?: (unfinished: Usage) => void): Promise<ResumableUpload> {
    const id = randomBytes(16).toString('hex')
    return this.exclusive(id, async () => {
      const upload = await this.#options.repository.create({ id, identityId: owner.id, fileName, metadata, length, instanceId: this.#options.instanceId, expiresAt: this.#expiry() }, admit)
      try {
        await (await open(this.pathOf(id), 'wx')).close()
      } catch (err) {
        await this.#options.repository.delete(id)
        throw isOutOfSpace(err) ? new InsufficientStorageError() : err
      }
      return upload
    })
  }

  /** `owner`'s unexpired upload of this id; anyone else's, or none, is 404 alike. */
  async get (id: string, owner: Identity): Promise<ResumableUpload> {
    const upload = ID.test(id) ? await this.#options.repository.find(id, new Date()) : undefined
    if (upload?.identityId !== owner.id) throw new NotFoundError('no such upload: it expired, was terminated, or never existed')
    return upload
  }

  /** True while the upload's bytes are being imported on this instance. */
  isImporting (id: string): boolean {
    return this.#holders.get(id)?.importing === true
  }

  /**
   * Runs `work` with the upload to itself on this instance. A request still
   * writing it is stopped first (a client asks again only when it thinks the
   * earlier request failed), and what it wrote is recorded before `work`
   * starts; an import is waited for. `work` gets the signal that stops it in turn.
   */
  async exclusive<T> (id: string, work: (signal: AbortSignal, importing: () => void) => Promise<T>): Promise<T> {
    for (let holder = this.#holders.get(id); holder !== undefined; holder = this.#holders.get(id)) {
      if (!holder.importing) holder.abort.abort(new ConflictError('this request was superseded by a later one for the same upload'))
      await holder.done
    }
    let release!: () => void
    const holder: Holder = { abort: new AbortController(), importing: false, done: new Promise((resolve) => { release = resolve }) }
    this.#holders.set(id, holder)
    // An upload expires RESUMABLE_EXPIRY_SECONDS after its last byte: while a request receives or imports it, its expiry
    // moves on (in the database, so that no instance's sweep takes it), not only at its end or at a checkpoint.
    const renewal = setInterval(() => {
      this.#options.repository.renew(id, this.#expiry()).catch((err: unknown) => { this.#options.logger.warn({ err, upload: id }, 'could not renew the expiry of a resumable upload') })
    }, Math.min(60_000, Math.max(250, this.#options.expirySeconds * 250)))
    renewal.unref()
    try {
      return await work(AbortSignal.any([holder.abort.signal, this.#closing.signal]), () => { holder.importing = true })
    } finally {
      clearInterval(renewal)
      this.#holders.delete(id)
      release()
    }
  }

  /**
   * Appends what `source` carries to the upload at its offset (the caller
   * checked the client's Upload-Offset), within `exclusive`. Returns the new
   * offset and when the upload now expires. However the stream ends (complete, cut off, stopped by
   * `signal`, too long, the disk full), what reached the disk is fsynced and
   * its offset recorded before this returns or throws. With `checksum`
   * (tus's Upload-Checksum) the request's bytes count only when all of them
   * came and hash to it; else the offset stays where it was, and a mismatch
   * throws ChecksumMismatchError (460).
   */
  async append (upload: ResumableUpload, source: Readable, signal: AbortSignal, checksum?: UploadChecksum): Promise<{ offset: number, expiresAt: Date }> {
    this.#here(upload)
    const path = this.pathOf(upload.id)
    const size = await stat(path).then((s) => s.size, () => -1)
    // The row says more than the file holds (it was removed by hand, or DATA_DIR was replaced): it cannot be resumed.
    if (size < upload.offset) {
      await this.terminate(upload.id)
      throw new NotFoundError('the bytes of this upload are gone; start it again')
    }
    const handle = await open(path, 'r+')
    const { repository } = this.#options
    // With a checksum, nothing of the request counts until all of it is here and hashes right: no checkpoint midway.
    const writer = new PositionedFileWriter(handle, upload.offset, checksum === undefined ? this.#options.checkpointBytes ?? DEFAULT_CHECKPOINT_BYTES : Number.POSITIVE_INFINITY,
      async (position) => { await repository.advance(upload.id, position, this.#expiry()) })
    const hash = checksum === undefined ? undefined : { running: createHash(checksum.algorithm), ...checksum }
    let failure: unknown
    try {
      const limit = atMost(upload.length - upload.offset)
      if (hash === undefined) await pipeline(spared(source), limit, writer, { signal })
      else await pipeline(spared(source), limit, new Transform({ transform (chunk: Buffer, _encoding, callback) { hash.running.update(chunk); callback(null, chunk) } }), writer, { signal })
    } catch (err) {
      failure = err
    }
    const expiresAt = this.#expiry()
    let kept: number
    try {
      await writer.settled()
      kept = writer.position
      if (hash !== undefined) {
        if (failure === undefined && !hash.running.digest().equals(hash.digest)) failure = new ChecksumMismatchError(`the request's ${writer.position - upload.offset} bytes do not match its Upload-Checksum (${hash.algorithm}); none were kept: send them again`)
        // A request cut short cannot be checked, and one that does not match is not kept: the offset stays, its bytes go.
        if (failure !== undefined) {
          kept = upload.offset
          await handle.truncate(kept)
        }
      }
      await handle.datasync()
      await repository.advance(upload.id, kept, expiresAt)
    } finally {
      await handle.close()
    }
    if (failure !== undefined) {
      if (failure instanceof ChecksumMismatchError) throw failure
      const reason: unknown = signal.aborted ? signal.reason : failure
      if (isOutOfSpace(reason)) throw new InsufficientStorageError(`the server is out of storage space; the first ${kept} bytes are kept (HEAD says so): resume later`)
      throw reason instanceof Error ? reason : new Error(String(reason))
    }
    return { offset: kept, expiresAt }
  }

  /** Keeps the final answer; the bytes go. */
  async complete (id: string, result: { status: number, body: unknown, uploadId?: number }): Promise<void> {
    await this.#options.repository.complete(id, result, this.#expiry())
    await rm(this.pathOf(id), { force: true })
  }

  /** Removes the upload, its bytes and any answer kept for it (tus termination). */
  async terminate (id: string): Promise<void> {
    await this.#options.repository.delete(id)
    await rm(this.pathOf(id), { force: true })
  }

  /** The bytes are on another instance: a load balancer without sticky routing sent the request here; a retry may reach the right one. */
  #here (upload: ResumableUpload): void {
    if (upload.instanceId !== this.#options.instanceId) {
      throw new ServiceUnavailableError('this upload\'s bytes are on another instance of this service; retry (requests for it must reach the instance that created it)')
    }
  }

  /** Throws unless this instance holds the upload's bytes. */
  assertHere (upload: ResumableUpload): void {
    this.#here(upload)
  }

  /**
   * Removes expired uploads (of every instance: their rows) and the files in
   * `dir` that no unexpired, unfinished upload of this instance names.
   */
  async sweep (): Promise<void> {
    this.#sweeping ??= (async () => {
      try {
        // The folder first, then the rows: a file created meanwhile is either not listed, or its row is found, or it is held.
        const files = await readdir(this.#options.dir)
        const expired = await this.#options.repository.deleteExpired(new Date())
        const receiving = await this.#options.repository.receivingOn(this.#options.instanceId)
        let removed = 0
        for (const file of files) {
          if (receiving.has(file) || this.#holders.has(file)) continue
          await rm(join(this.#options.dir, file), { force: true, recursive: true })
          removed++
        }
        if (expired.length > 0 || removed > 0) this.#options.logger.info({ expired: expired.length, filesRemoved: removed }, 'swept expired resumable uploads')
      } catch (err) {
        this.#options.logger.warn({ err }, 'could not sweep expired resumable uploads')
      } finally {
        this.#sweeping = undefined
      }
    })()
    await this.#sweeping
  }
}
