import { create, type KuboRPCClient } from 'kubo-rpc-client'
import { CID } from 'multiformats/cid'
import { NotFoundError, ServiceUnavailableError } from '../errors.ts'
import { IMPORT_PROFILES, type ImportProfileName } from './import-profiles.ts'
import type { DirectoryEntry, ImportCandidate, ImportedNode, IpfsBackend, NodeStat, ReadOptions } from './ipfs-backend.ts'

/** Reads never make Kubo search the network for content it does not hold. */
const OFFLINE = new URLSearchParams({ offline: 'true' })
const NOT_FOUND = /not found|no link named|could not find|does not exist|not pinned|merkledag: not found/i

const ipfsPath = (cid: CID, path: readonly string[] = []): string => `/ipfs/${[cid.toString(), ...path.map(encodeURIComponent)].join('/')}`
// Kubo answers in its own multiformats; ours compares and prints the same.
const ours = (cid: { toString: () => string }): CID => CID.parse(cid.toString())

/**
 * A Kubo node over its RPC API (kubo-rpc-client). Files are imported with the
 * profile's settings passed on each request; the node's own Import config must
 * use the same profile for directory sharding (see docker-compose.yml).
 */
export class KuboBackend implements IpfsBackend {
  readonly kind = 'kubo'
  readonly #client: KuboRPCClient
  readonly #url: string

  constructor (url: string) {
    this.#url = url
    this.#client = create({ url, timeout: '10m' })
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
    if (/fetch failed|ECONNREFUSED|ECONNRESET|socket hang up|EHOSTUNREACH|ENOTFOUND/i.test(`${message} ${cause?.message ?? ''} ${cause?.code ?? ''}`)) {
      return new ServiceUnavailableError(`the IPFS node (Kubo at ${this.#url}) cannot be reached; try again later`)
    }
    if (NOT_FOUND.test(message)) return new NotFoundError(`${what} not found on this node`)
    return err
  }

  async importTree (candidates: AsyncIterable<ImportCandidate> | Iterable<ImportCandidate>, options: { profile: ImportProfileName, signal?: AbortSignal }): Promise<ImportedNode[]> {
    const profile = IMPORT_PROFILES[options.profile]
    return this.#call('import', async () => {
      const nodes: ImportedNode[] = []
      const added = this.#client.addAll(candidates, {
        cidVersion: profile.cidVersion,
        rawLeaves: profile.rawLeaves,
        chunker: `size-${profile.chunkSize}`,
        hashAlg: profile.hash,
        wrapWithDirectory: true,
        pin: false,
        signal: options.signal,
        searchParams: new URLSearchParams({ 'max-file-links': String(profile.maxChildrenPerNode), 'fast-provide-root': 'false' })
      })
      for await (const entry of added) nodes.push({ path: entry.path, cid: ours(entry.cid), dagSize: BigInt(entry.size) })
      return nodes
    })
  }

  async pin (cid: CID, options: { signal?: AbortSignal } = {}): Promise<void> {
    await this.#call(`pin ${cid.toString()}`, async () => { await this.#client.pin.add(cid, { recursive: true, signal: options.signal }) })
  }

  async unpin (cid: CID): Promise<void> {
    try {
      await this.#call(`pin ${cid.toString()}`, async () => { await this.#client.pin.rm(cid, { recursive: true }) })
    } catch (err) {
      if (!(err instanceof NotFoundError)) throw err
    }
  }

  async isPinned (cid: CID): Promise<boolean> {
    try {
      for await (const pin of this.#client.pin.ls({ paths: [cid], type: 'recursive' })) if (pin.cid.toString() === cid.toString()) return true
      return false
    } catch (err) {
      const translated = this.#translate(err, cid.toString())
      if (translated instanceof NotFoundError) return false
      throw translated
    }
  }

  async * listPins (): AsyncIterable<CID> {
    try {
      for await (const pin of this.#client.pin.ls({ type: 'recursive' })) yield ours(pin.cid)
    } catch (err) {
      throw this.#translate(err, 'pins')
    }
  }

  async stat (cid: CID, path: readonly string[] = []): Promise<NodeStat> {
    const target = ipfsPath(cid, path)
    return this.#call(target, async () => {
      const stat = await this.#client.files.stat(target, { searchParams: OFFLINE })
      return stat.type === 'directory'
        ? { cid: ours(stat.cid), type: 'directory', size: 0 }
        : { cid: ours(stat.cid), type: 'file', size: Number(stat.size) }
    })
  }

  async * read (cid: CID, path: readonly string[], options: ReadOptions = {}): AsyncIterable<Uint8Array> {
    const target = ipfsPath(cid, path)
    try {
      yield * this.#client.cat(target, { offset: options.offset, length: options.length, signal: options.signal, searchParams: OFFLINE })
    } catch (err) {
      throw this.#translate(err, target)
    }
  }

  async * list (cid: CID, path: readonly string[] = []): AsyncIterable<DirectoryEntry> {
    const target = ipfsPath(cid, path)
    try {
      for await (const entry of this.#client.ls(target, { searchParams: OFFLINE })) {
        yield { name: entry.name, cid: ours(entry.cid), type: entry.type === 'dir' ? 'directory' : 'file', size: entry.type === 'dir' ? 0 : Number(entry.size) }
      }
    } catch (err) {
      throw this.#translate(err, target)
    }
  }

  async ping (): Promise<void> {
    await this.#call('id', async () => { await this.#client.id({ timeout: 3000 }) })
  }

  async close (): Promise<void> {}
}
