import { randomUUID } from 'node:crypto'
import type { ClientRequest, IncomingMessage } from 'node:http'
import { request as httpsRequest } from 'node:https'
import { Readable } from 'node:stream'
import { pipeline } from 'node:stream/promises'
import { create, type KuboRPCClient } from 'kubo-rpc-client'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagPb from '@ipld/dag-pb'
import { varint } from 'multiformats'
import { CID } from 'multiformats/cid'
import { HeimdallError, InsufficientStorageError, isOutOfSpace, NotFoundError, ServiceUnavailableError } from '../errors.ts'
import { http } from '../node-http.ts'
import { GcGate } from './gc-gate.ts'
import { IMPORT_PROFILES, type ImportProfileName } from './import-profiles.ts'
import { markMadeNoPin, type DirectoryEntry, type GcReport, type ImportCandidate, type ImportedNode, type ImportLease, type IpfsBackend, type NodeNetwork, type NodeStat, type ReadOptions, type VerifiedBlock } from './ipfs-backend.ts'
import { kuboNetwork } from './kubo-network.ts'
import { rootForms } from './cid-forms.ts'
import { IPFS_IDLE_MS, idleBounded, idleWatch, nodeStalled } from './idle-bound.ts'
import { rawStat, unixfsStatOfBlock } from './unixfs-stat.ts'

/**
 * The multipart body Kubo's add reads: one part per file or directory, paths
 * in the file name. `progress.ending` is set as the closing boundary goes:
 * until then Kubo's add cannot have ended, nor pinned.
 */
async function * multipartBody (candidates: AsyncIterable<ImportCandidate> | Iterable<ImportCandidate>, boundary: string, progress: { ending: boolean }): AsyncIterable<Uint8Array> {
  for await (const candidate of candidates) {
    const type = candidate.content === undefined ? 'application/x-directory' : 'application/octet-stream'
    yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="${encodeURIComponent(candidate.path)}"\r\nContent-Type: ${type}\r\n\r\n`)
    if (candidate.content !== undefined) yield * candidate.content
    yield Buffer.from('\r\n')
  }
  progress.ending = true
  yield Buffer.from(`--${boundary}--\r\n`)
}

/**
 * A CARv1 stream of `blocks` in one multipart part, for Kubo's dag/import.
 * The header names the first block as its root: CARv1 wants one, and with
 * pin-roots=false Kubo does nothing with it.
 */
async function * carBody (blocks: AsyncIterable<VerifiedBlock> | Iterable<VerifiedBlock>, boundary: string): AsyncIterable<Uint8Array> {
  let started = false
  for await (const block of blocks) {
    if (!started) {
      started = true
      yield Buffer.from(`--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="blocks.car"\r\nContent-Type: application/vnd.ipld.car\r\n\r\n`)
      const header = dagCbor.encode({ roots: [block.cid], version: 1 })
      yield varint.encodeTo(header.byteLength, new Uint8Array(varint.encodingLength(header.byteLength)))
      yield header
    }
    const length = block.cid.bytes.byteLength + block.bytes.byteLength
    yield varint.encodeTo(length, new Uint8Array(varint.encodingLength(length)))
    yield block.cid.bytes
    yield block.bytes
  }
  if (started) yield Buffer.from(`\r\n--${boundary}--\r\n`)
}

/**
 * Reads never make Kubo search the network for content it does not hold:
 * `?offline=true` on a read: Kubo answers from its repo and never fetches.
 * An option of its own, not `searchParams`: kubo-rpc-client spreads
 * `searchParams` into a plain object, which silently drops a URLSearchParams
 * (an online Kubo then went to the network for every unknown CID).
 */
const OFFLINE: Record<string, unknown> = { offline: true }
/** How long an import waits for Kubo to read or answer anything: longer than any pause a working Kubo makes (a repo GC holds adds while it runs). */
const IMPORT_IDLE_MS = 10 * 60_000
/** How long removing a pin, or asking about one, may take: moments for a Kubo that answers at all. */
const PIN_QUERY_MS = 60_000
/** The identity multihash: the block is the digest itself, and Kubo's block/get would not be asked. */
const IDENTITY = 0x00
const NOT_FOUND = /not found|no link named|could not find|does not exist|not pinned|merkledag: not found/i

/** A root's CIDv1 and, where it has one, its CIDv0: Kubo pins each spelling apart. */
const spellings = (cid: CID): CID[] => rootForms(cid).slice(0, 2).map((form) => CID.parse(form))

/** Kubo's JSON error message, else the text as it came. */
function kuboMessage (text: string): string {
  try { return (JSON.parse(text) as { Message?: string }).Message ?? text } catch { return text.trim() }
}

// Raw names: the RPC client puts the path in a query parameter, and Kubo does not percent-decode it.
const ipfsPath = (cid: CID, path: readonly string[] = []): string => `/ipfs/${[cid.toString(), ...path].join('/')}`
// Kubo answers in its own multiformats; ours compares and prints the same.
const ours = (cid: { toString: () => string }): CID => CID.parse(cid.toString())

/**
 * Fails `req` with a 503 once Kubo has kept it waiting for `idleMs`: a write
 * waiting for room (the request's buffer full) or, the body all sent, an
 * answer that does not come, with no byte handed to the socket or read from
 * it meanwhile. Bytes leave Node's buffer only as the kernel's send buffer
 * (a few MiB) drains, so `idleMs` is also the time Kubo has to take that
 * buffer: far below it for a Kubo that reads at all at the default of ten
 * minutes, not a limit to set in seconds. Time the body's own source takes
 * (a client pausing its upload) never counts. Watches while `work` (the
 * request's exchange) runs.
 */
async function whileKuboAnswers<T> (req: ClientRequest, idleMs: number, work: () => Promise<T>): Promise<T> {
  let moved = -1
  let stalled: Error | undefined
  // Waiting on Kubo while no byte has moved since the last look; bytes that moved start the count again.
  const waitingOnKubo = (): boolean => {
    const bytes = req.socket === null ? 0 : req.socket.bytesRead + req.socket.bytesWritten
    if (bytes !== moved) { moved = bytes; return false }
    return req.writableNeedDrain || req.writableEnded
  }
  const watch = idleWatch(idleMs, waitingOnKubo, () => { stalled = nodeStalled(); req.destroy(stalled) })
  try {
    return await work()
  } catch (err) {
    // Destroyed once its answer had begun, the request's response fails with Node's own "aborted", not our error.
    throw stalled ?? err
  } finally {
    watch.stop()
  }
}

/** A progress line's count of nodes (`{"Progress":5,"Bytes":68183}`; `{}` is 0); undefined for another line (the pins). */
function progressOf (line: string): number | undefined {
  try {
    const parsed = JSON.parse(line) as { Progress?: unknown, Pins?: unknown }
    if (parsed.Pins !== undefined) return undefined
    return typeof parsed.Progress === 'number' ? parsed.Progress : 0
  } catch {
    return undefined
  }
}

/**
 * How far a pin asked with progress got: Kubo reports every half second the
 * count of DAG nodes its pin walked so far. A count above 0 that stays the
 * same for `idleMs` is a pin stuck on a block Kubo does not have (an online
 * Kubo looks for it for good): its ticks go on, so only the count tells.
 * A count of 0 is not judged: a pin waiting for a repo GC to end says 0.
 */
class PinProgress {
  readonly #idleMs: number
  #scanned = 0
  #nodes = 0
  #since = Date.now()

  constructor (idleMs: number) { this.#idleMs = idleMs }

  /** Reads the lines `text` (the answer so far) gained; true once the count has stood still past the bound. */
  stuck (text: string): boolean {
    for (let end = text.indexOf('\n', this.#scanned); end !== -1; end = text.indexOf('\n', this.#scanned)) {
      const count = progressOf(text.slice(this.#scanned, end))
      this.#scanned = end + 1
      if (count !== undefined && count !== this.#nodes) {
        this.#nodes = count
        this.#since = Date.now()
      }
    }
    return this.#nodes > 0 && Date.now() - this.#since >= this.#idleMs
  }
}

/**
 * A Kubo node over its RPC API (kubo-rpc-client). Files are imported with the
 * profile's settings passed on each request; the node's own Import config must
 * use the same profile for directory sharding (see docker-compose.yml).
 */
export class KuboBackend implements IpfsBackend {
  readonly kind = 'kubo'
  readonly #client: KuboRPCClient
  readonly #url: string
  /**
   * Heimdall's own collections wait for imports: one without a pin name adds
   * with pin=false (pinned at commit), and Kubo's add holds its GC lock only
   * when it pins, so a `repo/gc` between add and pin would take the upload's
   * blocks; and a `repo/gc` waiting while an add that pins runs makes Kubo pin
   * the unfinished tree without a name, for good (its `maybePauseForGC`).
   */
  readonly #gate = new GcGate()

  readonly #importIdleMs: number
  readonly #pinIdleMs: number
  readonly #readIdleMs: number

  /**
   * How long an import waits for Kubo to read or answer anything
   * (IMPORT_IDLE_MS); a pin, for a word from Kubo (IPFS_IDLE_MS): asked with
   * progress, Kubo says how far it got every half second, also while its
   * pin waits for a repo GC to end, so silence this long is a Kubo that
   * stopped (or a network that drops everything), however large the DAG,
   * and a count of nodes standing still as long a pin stuck inside a running
   * Kubo (see PinProgress); a read (IPFS_IDLE_MS).
   */
  constructor (url: string, options: { importIdleMs?: number, pinIdleMs?: number, readIdleMs?: number } = {}) {
    this.#url = url
    this.#client = create({ url })
    this.#importIdleMs = options.importIdleMs ?? IMPORT_IDLE_MS
    this.#pinIdleMs = options.pinIdleMs ?? IPFS_IDLE_MS
    this.#readIdleMs = options.readIdleMs ?? IPFS_IDLE_MS
  }

  /**
   * `read(signal)` with the caller's signal and the read's bound (a
   * TimeoutError, translated to a 503). The bound's timer is cleared once
   * the read is done: AbortSignal.timeout joined to a caller's signal kept
   * ~750 B per block of a CAR for the whole bound.
   */
  async #withinReadBound<T> (read: (signal: AbortSignal) => Promise<T>, signal?: AbortSignal): Promise<T> {
    const bound = new AbortController()
    const timer = setTimeout(() => { bound.abort(new DOMException('the IPFS node did not answer in time', 'TimeoutError')) }, this.#readIdleMs)
    try {
      return await read(signal === undefined ? bound.signal : AbortSignal.any([signal, bound.signal]))
    } finally {
      clearTimeout(timer)
    }
  }

  /** `stream(signal)`'s items, each within the read bound once asked for (see idleBounded). */
  #boundedStream<T> (stream: (signal: AbortSignal) => AsyncIterable<T>, signal?: AbortSignal): AsyncIterable<T> {
    const abort = new AbortController()
    return idleBounded(stream(signal === undefined ? abort.signal : AbortSignal.any([signal, abort.signal])), this.#readIdleMs, nodeStalled, abort)
  }

  /** Turns "cannot connect" into 503 and Kubo's not-found answers into 404; everything else passes. */
  async #call<T> (what: string, work: () => Promise<T>): Promise<T> {
    try {
      return await work()
    } catch (err) {
      throw this.#translate(err, what)
    }
  }

  #translate (err: unknown, what: string): unknown {
    const message = err instanceof Error ? err.message : String(err)
    const cause: NodeJS.ErrnoException | undefined = err instanceof Error && err.cause instanceof Error ? err.cause : undefined
    // The node's address is internal: it goes to the log with the cause, not to the client.
    const unavailable = (says: string): ServiceUnavailableError => Object.assign(new ServiceUnavailableError(`the IPFS node ${says}; try again later`), { cause: err })
    const code = (err as NodeJS.ErrnoException | undefined)?.code ?? ''
    if (/fetch failed|ECONNREFUSED|ECONNRESET|EPIPE|socket hang up|EHOSTUNREACH|ENOTFOUND/i.test(`${message} ${code} ${cause?.message ?? ''} ${cause?.code ?? ''}`)) return unavailable('cannot be reached')
    // Kubo shutting down mid-request (its datastore closed under an add), or not answering in time (a timeout signal).
    if (/datastore closed|daemon is shutting down|context canceled/i.test(message) || (err instanceof Error && err.name === 'TimeoutError')) return unavailable('is not answering')
    if (isOutOfSpace(err)) return new InsufficientStorageError()
    if (NOT_FOUND.test(message)) return new NotFoundError(`${what} not found on this node`)
    return err
  }

  /**
   * POST /api/v0/add with a multipart body written through `pipeline`, so the
   * upload moves at the pace Kubo reads it. (kubo-rpc-client's addAll hands
   * the body to fetch, which pulled a 300 MB file into memory faster than
   * Kubo consumed it: 372 MB of buffers, measured.) Kubo answers one JSON line
   * per file and directory, root last.
   */
  async importTree (candidates: AsyncIterable<ImportCandidate> | Iterable<ImportCandidate>, options: { profile: ImportProfileName, signal?: AbortSignal, lease?: ImportLease, pinName?: string }): Promise<ImportedNode[]> {
    const profile = IMPORT_PROFILES[options.profile]
    const url = new URL('/api/v0/add', this.#url)
    url.search = new URLSearchParams({
      'cid-version': String(profile.cidVersion),
      'raw-leaves': String(profile.rawLeaves),
      chunker: `size-${profile.chunkSize}`,
      hash: profile.hash,
      'max-file-links': String(profile.maxChildrenPerNode),
      'wrap-with-directory': 'true',
      // Pinned by the add as `ipfs add` pins (the root recorded as pinned, no walk of the DAG), under a name the pin
      // journal knows; else at commit, by a pin/add that reads the whole DAG back.
      ...(options.pinName === undefined ? { pin: 'false' } : { pin: 'true', 'pin-name': options.pinName }),
      progress: 'false',
      'stream-channels': 'true',
      'fast-provide-root': 'false'
    }).toString()
    const boundary = `heimdall-${randomUUID()}`
    const progress = { ending: false }
    try {
      const nodes = await this.#call('import', async () => {
        const send = url.protocol === 'https:' ? httpsRequest : http.request
        const req = send(url, { method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, signal: options.signal })
        // A Kubo that stops reading and answering (stopped, deadlocked) fails the import instead of holding it for good.
        return whileKuboAnswers(req, this.#importIdleMs, async () => this.#send(req, candidates, boundary, progress))
      })
      if (options.pinName !== undefined && options.lease !== undefined) this.#pinnedByAdd.add(options.lease)
      return nodes
    } catch (err) {
      // Its body cut short (the client gone, a file refused as it streamed, Kubo away), the add failed before its pin.
      if (!progress.ending) throw markMadeNoPin(err)
      // An add that pins drops the root's pin before making its own (another upload's of the same content, renamed):
      // failing in between, it took that pin away (see #pinChange).
      if (options.pinName !== undefined) this.#changeFailed()
      throw err
    }
  }

  /** Sends the multipart body of `candidates` on `req` (POST /api/v0/add) and reads Kubo's answer: one line per file and directory. */
  async #send (req: ClientRequest, candidates: AsyncIterable<ImportCandidate> | Iterable<ImportCandidate>, boundary: string, progress: { ending: boolean }): Promise<ImportedNode[]> {
    const answered = new Promise<IncomingMessage>((resolve, reject) => { req.once('response', resolve); req.once('error', reject) })
    const sent = pipeline(Readable.from(multipartBody(candidates, boundary, progress)), req)
    sent.catch(() => {}) // observed below; an early answer from Kubo must not leave it unhandled
    const res = await answered
    const nodes: ImportedNode[] = []
    // Decoded as one stream: a name's UTF-8 bytes may be split between two chunks.
    res.setEncoding('utf8')
    let text = ''
    for await (const chunk of res) text += chunk as string
    await sent
    const lines = text.split('\n').filter((line) => line.trim() !== '').map((line) => JSON.parse(line) as { Name?: string, Hash?: string, Size?: string, Message?: string })
    const streamError = res.trailers['x-stream-error']
    const failure = res.statusCode !== 200 ? lines[0]?.Message ?? `HTTP ${res.statusCode ?? 0}` : streamError
    if (failure !== undefined && failure !== '') throw new Error(`Kubo refused the import: ${failure}`)
    for (const line of lines) {
      if (line.Hash === undefined) continue
      nodes.push({ path: line.Name ?? '', cid: CID.parse(line.Hash), dagSize: BigInt(line.Size ?? '0') })
    }
    return nodes
  }

  /**
   * POST /api/v0/dag/import with pin-roots=false, the blocks re-framed as a
   * CAR and streamed through `pipeline` at the pace Kubo reads. Blocks land
   * unpinned, like an add with pin=false: the lease keeps our collections
   * off them. A source that fails (a block that does not verify) aborts the
   * request, and its error is the one thrown.
   */
  async putBlocks (blocks: AsyncIterable<VerifiedBlock> | Iterable<VerifiedBlock>, options: { lease: ImportLease, signal?: AbortSignal }): Promise<void> {
    const url = new URL('/api/v0/dag/import', this.#url)
    url.search = new URLSearchParams({ 'pin-roots': 'false', silent: 'true', stats: 'false' }).toString()
    const boundary = `heimdall-${randomUUID()}`
    const send = url.protocol === 'https:' ? httpsRequest : http.request
    const req = send(url, { method: 'POST', headers: { 'Content-Type': `multipart/form-data; boundary=${boundary}` }, signal: options.signal })
    const answered = new Promise<{ status: number, text: string, trailer: string | undefined }>((resolve, reject) => {
      req.once('response', (res: IncomingMessage) => {
        res.setEncoding('utf8')
        let text = ''
        res.on('data', (chunk: string) => { text += chunk })
        res.once('end', () => { resolve({ status: res.statusCode ?? 0, text, trailer: res.trailers['x-stream-error'] }) })
        res.once('error', reject)
      })
      req.once('error', reject)
    })
    answered.catch(() => {}) // observed below, after the body's own outcome
    // As for imports: a Kubo that stops reading and answering fails the upload instead of holding it (and, through its
    // lease, every collection) for good.
    await whileKuboAnswers(req, this.#importIdleMs, async () => { await this.#sendCar(req, blocks, boundary, answered, options) })
  }

  async #sendCar (req: ClientRequest, blocks: AsyncIterable<VerifiedBlock> | Iterable<VerifiedBlock>, boundary: string, answered: Promise<{ status: number, text: string, trailer: string | undefined }>, options: { signal?: AbortSignal }): Promise<void> {
    let empty = true
    const counted = (async function * () { for await (const chunk of carBody(blocks, boundary)) { empty = false; yield chunk } })()
    try {
      await pipeline(Readable.from(counted), req)
    } catch (err) {
      // Our source's refusal (a block that does not verify) or the client leaving says more than the broken request it caused.
      if (err instanceof HeimdallError || options.signal?.aborted === true) throw err
      const answer = await Promise.race([answered.catch(() => undefined), new Promise<undefined>((resolve) => { setTimeout(() => { resolve(undefined) }, 1000) })])
      if (answer !== undefined && answer.status !== 200) throw new Error(`Kubo refused the blocks: ${kuboMessage(answer.text)}`, { cause: err })
      throw this.#translate(err, 'dag/import')
    }
    if (empty) { req.destroy(); return }
    const answer = await answered.catch((err: unknown) => { throw this.#translate(err, 'dag/import') })
    const failure = answer.status !== 200 ? kuboMessage(answer.text) : answer.trailer
    if (failure !== undefined && failure !== '') throw new Error(`Kubo refused the blocks: ${failure}`)
  }

  /** Holds off Heimdall's collections until released; Kubo has no per-import bookkeeping, so a discard leaves the blocks to the next collection. */
  async openLease (): Promise<ImportLease> {
    const leave = await this.#gate.enter()
    const lease = { release: async () => { leave(); await Promise.resolve() }, discard: async () => { leave(); await Promise.resolve() } }
    if (this.#changesUnderWay === 0) this.#changesBeforeLease.set(lease, this.#changesEnded)
    return lease
  }

  /** Changes of Kubo's pins that may take one away, asked by this process: under way now, and ended so far (see #pinChange). */
  #changesUnderWay = 0
  #changesEnded = 0
  /** For each import lease opened while no such change was under way, the changes ended by then. */
  readonly #changesBeforeLease = new WeakMap<ImportLease, number>()
  /** The leases of imports whose add pinned their root (a pin name given). */
  readonly #pinnedByAdd = new WeakSet<ImportLease>()

  /**
   * Runs a change of Kubo's pins that may take one away: an unpin, or a
   * pin/add, which drops a root's pin before walking its DAG and pins it
   * again only if the walk ends. One that fails counts as ended only
   * PIN_QUERY_MS later: Kubo may still apply it after the request is given
   * up on. So does an add that pins and fails once its whole body was sent
   * (it drops a pin of the same root before making its own).
   */
  async #pinChange<T> (work: () => Promise<T>): Promise<T> {
    this.#changesUnderWay++
    try {
      const result = await work()
      this.#changesUnderWay--
      this.#changesEnded++
      return result
    } catch (err) {
      this.#changesUnderWay--
      this.#changeFailed()
      throw err
    }
  }

  /** A change of pins that failed: under way, as far as #importPinStands knows, for PIN_QUERY_MS more. */
  #changeFailed (): void {
    this.#changesUnderWay++
    setTimeout(() => { this.#changesUnderWay--; this.#changesEnded++ }, PIN_QUERY_MS).unref()
  }

  /**
   * Whether the pin an import made in its add still stands. Only a change
   * of pins (see #pinChange) takes one away, and over Kubo one Heimdall
   * changes them (the per-root lock is in process; README: one Heimdall per
   * Kubo): with none begun since the import's lease opened, none can have
   * taken it, and Kubo is not asked. Else it is asked (a delete of another
   * upload of the same content may have taken it).
   */
  async #importPinStands (cid: CID, lease: ImportLease): Promise<boolean> {
    if (this.#changesUnderWay === 0 && this.#changesBeforeLease.get(lease) === this.#changesEnded) return true
    return this.isPinned(cid)
  }

  /** `repo/gc`, with no import of ours between add and pin; `dryRun` compares local blocks with what pins and MFS reach. */
  async gc (options: { dryRun?: boolean } = {}): Promise<GcReport> {
    return this.#gate.exclusive(async () => this.#call('repo/gc', async () => {
      if (options.dryRun === true) return this.#gcPlan()
      const before = (await this.#client.repo.stat()).repoSize
      let blocks = 0
      for await (const removed of this.#client.repo.gc()) {
        if (removed.err != null) throw removed.err
        blocks++
      }
      const after = (await this.#client.repo.stat()).repoSize
      return { dryRun: false, blocks, bytes: Math.max(0, Number(before - after)), records: 0 }
    }))
  }

  async #gcPlan (): Promise<GcReport> {
    const key = (cid: string): string => CID.parse(cid).multihash.bytes.join(',')
    const kept = new Set<string>()
    const roots: string[] = [(await this.#client.files.stat('/')).cid.toString()]
    for await (const pin of this.#client.pin.ls()) {
      if (pin.type === 'recursive') roots.push(pin.cid.toString())
      else kept.add(key(pin.cid.toString()))
    }
    for (const root of roots) {
      kept.add(key(root))
      for await (const ref of this.#client.refs(CID.parse(root), { recursive: true, unique: true })) if (ref.ref !== '') kept.add(key(ref.ref))
    }
    const report: GcReport = { dryRun: true, blocks: 0, bytes: 0, records: 0 }
    for await (const ref of this.#client.refs.local()) {
      if (ref.ref === '' || kept.has(key(ref.ref))) continue
      report.blocks++
      report.bytes += (await this.#client.block.stat(CID.parse(ref.ref))).size
    }
    return report
  }

  /**
   * Kubo keeps a pin per spelling of a CID (pinning `Qm…` and its `bafy…`
   * makes two), where Heimdall's other pin stores keep one: pins are made
   * as the CIDv1, and unpinning or asking about a root covers both
   * spellings, so that a CIDv0 pin request and an upload of the same DAG
   * hold one pin (see cid-forms.ts).
   */
  async pin (cid: CID, options: { signal?: AbortSignal, imported?: ImportLease } = {}): Promise<void> {
    // The root of an import whose add pinned it: Kubo's pin/add of a root already pinned removes that pin and walks the
    // whole DAG again before pinning it anew.
    if (options.imported !== undefined && this.#pinnedByAdd.has(options.imported) && await this.#importPinStands(cid, options.imported)) return
    const url = new URL('/api/v0/pin/add', this.#url)
    url.search = new URLSearchParams({ arg: cid.toV1().toString(), recursive: 'true', progress: 'true' }).toString()
    await this.#pinChange(async () => this.#call(`pin ${cid.toString()}`, async () => {
      const send = url.protocol === 'https:' ? httpsRequest : http.request
      const req = send(url, { method: 'POST', signal: options.signal })
      // Asked with progress so that a Kubo that stops answering fails the pin instead of holding the upload, and its
      // root's lock, for good (kubo-rpc-client's pin.add cannot read progress lines).
      await whileKuboAnswers(req, this.#pinIdleMs, async () => {
        const answered = new Promise<IncomingMessage>((resolve, reject) => { req.once('response', resolve); req.once('error', reject) })
        req.end()
        const res = await answered
        res.setEncoding('utf8')
        let text = ''
        const progress = new PinProgress(this.#pinIdleMs)
        for await (const chunk of res) {
          text += chunk as string
          // Returning ends the request: Kubo's pin is cancelled with it.
          if (progress.stuck(text)) throw new ServiceUnavailableError(`the IPFS node's pin went ${Math.round(this.#pinIdleMs / 1000)} s without walking a block further (a block of the content may be missing from it); try again later`)
        }
        // Progress lines, then {"Pins":[…]}; a failure after the first line comes as the stream's trailer.
        const failure = res.statusCode !== 200 ? kuboMessage(text) : res.trailers['x-stream-error']
        if (failure !== undefined && failure !== '') throw new Error(failure)
        if (!text.split('\n').some((line) => line.includes('"Pins"'))) throw new Error(`Kubo's pin/add ended without its pins: ${text.slice(-200)}`)
      })
    }))
  }

  /** Imports pin their root in the add, under the name they are given (see importTree). */
  readonly importPins = { named: (prefix: string, options: { signal?: AbortSignal } = {}) => this.#named(prefix, options.signal) }

  async * #named (prefix: string, signal?: AbortSignal): AsyncIterable<{ name: string, cid: CID }> {
    try {
      // Kubo's name filter matches any part of a name (and reads every pin's name): the prefix is checked here too.
      for await (const pin of this.#client.pin.ls({ type: 'recursive', name: prefix, signal })) {
        if (pin.name?.startsWith(prefix) === true) yield { name: pin.name, cid: ours(pin.cid) }
      }
    } catch (err) {
      throw this.#translate(err, 'pins')
    }
  }

  async unpin (cid: CID): Promise<void> {
    await this.#pinChange(async () => {
      for (const form of spellings(cid)) {
        try {
          await this.#call(`pin ${form.toString()}`, async () => { await this.#client.pin.rm(form, { recursive: true, signal: AbortSignal.timeout(PIN_QUERY_MS) }) })
        } catch (err) {
          if (!(err instanceof NotFoundError)) throw err
        }
      }
    })
  }

  async isPinned (cid: CID): Promise<boolean> {
    for (const form of spellings(cid)) {
      try {
        for await (const pin of this.#client.pin.ls({ paths: [form], type: 'recursive', signal: AbortSignal.timeout(PIN_QUERY_MS) })) if (pin.cid.toString() === form.toString()) return true
      } catch (err) {
        const translated = this.#translate(err, form.toString())
        if (!(translated instanceof NotFoundError)) throw translated
      }
    }
    return false
  }

  async * listPins (options: { signal?: AbortSignal } = {}): AsyncIterable<CID> {
    try {
      for await (const pin of this.#client.pin.ls({ type: 'recursive', signal: options.signal })) yield ours(pin.cid)
    } catch (err) {
      throw this.#translate(err, 'pins')
    }
  }

  /**
   * Kubo's files/stat resolves the path (and sizes a raw block); a dag-pb
   * node is then read from its own block: files/stat calls a symlink a
   * file, and does not say its target.
   */
  async stat (cid: CID, path: readonly string[] = [], options: { signal?: AbortSignal } = {}): Promise<NodeStat> {
    let node = cid
    if (path.length > 0 || cid.code !== dagPb.code) {
      const target = ipfsPath(cid, path)
      const stat = await this.#call(target, async () => this.#withinReadBound(async (signal) => this.#client.files.stat(target, { ...OFFLINE, signal }), options.signal))
      node = ours(stat.cid)
      if (node.code !== dagPb.code) return rawStat(node, Number(stat.size))
    }
    return unixfsStatOfBlock(node, await this.getBlock(node, options))
  }

  async * read (cid: CID, path: readonly string[], options: ReadOptions = {}): AsyncIterable<Uint8Array> {
    const target = ipfsPath(cid, path)
    try {
      yield * this.#boundedStream((signal) => this.#client.cat(target, { offset: options.offset, length: options.length, signal, ...OFFLINE }), options.signal)
    } catch (err) {
      throw this.#translate(err, target)
    }
  }

  async * list (cid: CID, path: readonly string[] = [], options: { signal?: AbortSignal } = {}): AsyncIterable<DirectoryEntry> {
    const target = ipfsPath(cid, path)
    const links: Array<{ name: string, cid: CID }> = []
    try {
      for await (const entry of this.#boundedStream((signal) => this.#client.ls(target, { ...OFFLINE, signal }), options.signal)) {
        // kubo-rpc-client answers an empty directory with one entry without a name, the directory itself: no child.
        if (typeof entry.name !== 'string' || entry.name === '') continue
        links.push({ name: entry.name, cid: ours(entry.cid) })
      }
    } catch (err) {
      throw this.#translate(err, target)
    }
    // Each child from its own node: kubo-rpc-client's ls calls a symlink (Kubo's type 4) a file.
    for (const link of links) yield { name: link.name, ...await this.stat(link.cid, [], options) }
  }

  async getBlock (cid: CID, options: { signal?: AbortSignal } = {}): Promise<Uint8Array> {
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest
    return this.#call(`block ${cid.toString()}`, async () => this.#withinReadBound(async (signal) => this.#client.block.get(cid, { signal, ...OFFLINE }), options.signal))
  }

  #network: NodeNetwork | undefined

  /** Kubo on the IPFS network, once `joinNetwork` found it online; undefined for an offline Kubo. */
  get network (): NodeNetwork | undefined {
    return this.#network
  }

  /** Asks Kubo whether it is on the network; pin requests for content it lacks are then fetched through it. */
  async joinNetwork (): Promise<void> {
    this.#network = await kuboNetwork(this.#client, await this.identify())
  }

  /**
   * One block for a pin request, asked of Kubo online: held, or fetched from
   * its peers (Kubo checks it against the CID and keeps it in its repo) until
   * `signal` aborts. Under the lease, Heimdall's collections wait; a discard
   * leaves what came to the next collection, as for imports.
   */
  async fetchBlock (cid: CID, options: { lease: ImportLease, signal: AbortSignal }): Promise<Uint8Array> {
    if (cid.multihash.code === IDENTITY) return cid.multihash.digest
    return this.#call(`block ${cid.toString()}`, async () => this.#client.block.get(cid, { signal: options.signal }))
  }

  async ping (): Promise<void> {
    // A signal, not the client's `timeout` option: kubo-rpc-client 7.1 never applies that one (a number is never NaN).
    await this.#call('id', async () => { await this.#client.id({ signal: AbortSignal.timeout(3000) }) })
  }

  /** Kubo's peer id and the addresses it announces, each ending in /p2p/<its peer id> (for the Pinning Service API's delegates). */
  async identify (): Promise<{ peerId: string, addresses: string[] }> {
    return this.#call('id', async () => {
      const id = await this.#client.id({ signal: AbortSignal.timeout(5000) })
      const peerId = id.id.toString()
      // An offline Kubo has no swarm addresses (null, not []).
      const addresses = (id.addresses ?? []).map((ma) => ma.toString()).map((text) => (text.includes('/p2p/') ? text : `${text}/p2p/${peerId}`))
      return { peerId, addresses }
    })
  }

  async close (): Promise<void> {}
}
