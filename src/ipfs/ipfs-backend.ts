import type { CID } from 'multiformats/cid'
import type { ImportProfileName } from './import-profiles.ts'

/** One thing to import: a file when it has `content`, else an (empty) directory. */
export interface ImportCandidate {
  /** Relative, `/`-separated path inside the imported tree. */
  path: string
  content?: AsyncIterable<Uint8Array>
}

/** One node that an import produced, in the order `ipfs add` prints them. */
export interface ImportedNode {
  /** Relative path; `''` is the wrapping root directory. */
  path: string
  cid: CID
  /** Cumulative DAG size, as `ipfs add` reports it. */
  dagSize: bigint
}

/** What a node is, from its own block. */
export interface NodeStat {
  cid: CID
  /** A UnixFS symlink is none of the others: its bytes are a path, never followed. */
  type: 'file' | 'directory' | 'symlink'
  /** File content length in bytes (a symlink's: its target's); 0 for directories. */
  size: number
  /** A symlink's target, as its node holds it. */
  target?: string
  /**
   * Its permission bits (chmod's twelve): the node's (UnixFS 1.5, `ipfs add
   * --preserve-mode`), else UnixFS's default, 0644 (directories 0755); a
   * symlink's are 0777, as Unix shows them (its node's are never used).
   */
  mode: number
  /** Its modification time, when its node holds a valid one (`--preserve-mtime`): seconds since the epoch, and nanoseconds. */
  mtime?: { secs: number, nsecs: number }
}

/** One link of a directory, and what its node is. */
export interface DirectoryEntry extends NodeStat {
  name: string
}

/**
 * Protects the blocks an import writes from garbage collection, from the
 * first block until the import's root is pinned (`release`) or the upload is
 * refused (`discard`: its blocks that nothing else pins or leases are
 * removed). Settling twice is a no-op.
 */
export interface ImportLease {
  release: () => Promise<void>
  discard: () => Promise<void>
}

/** A block whose bytes the caller has checked against its CID (see car-reader.ts). */
export interface VerifiedBlock {
  cid: CID
  bytes: Uint8Array
}

/** What a garbage collection removed, or would remove with `dryRun`. */
export interface GcReport {
  dryRun: boolean
  /** Blocks (and partial block writes) removed. */
  blocks: number
  bytes: number
  /** Stale bookkeeping records removed (the embedded node's pinned-block records). */
  records: number
  /** The S3 store's packs rewritten because most of their bytes were collected, the bytes that freed, and packs left alone because their objects no longer hold their blocks' bytes. */
  compacted?: CompactReport
}

export interface ReadOptions {
  offset?: number
  length?: number
  signal?: AbortSignal
}

/**
 * This node on the IPFS network, when it is on it: the embedded node with
 * IPFS_NETWORK=private or public.
 */
export interface NodeNetwork {
  /** `private`: reachable by the peers it is connected to; `public`: announced in the DHT. */
  readonly mode: 'private' | 'public'
  readonly peerId: string
  /** Where other nodes reach this one, each ending in /p2p/<peer id>. */
  addresses: () => string[]
  /** Peers connected now. */
  peerCount: () => number
  /** Why a pin request's origin is not dialed (see DialPolicy); undefined when it is. */
  originRefusal: (origin: string) => string | undefined
  /** Dials origins (those allowed); how many answered. */
  connect: (origins: readonly string[], signal?: AbortSignal) => Promise<number>
}

const MADE_NO_PIN = Symbol('the import made no pin')

/** Marks an import's failure as one after which the node holds no pin of it (see IpfsBackend.importTree). */
export function markMadeNoPin<T> (err: T): T {
  if (typeof err === 'object' && err !== null) Object.defineProperty(err, MADE_NO_PIN, { value: true })
  return err
}

export function importMadeNoPin (err: unknown): boolean {
  return typeof err === 'object' && err !== null && MADE_NO_PIN in err
}

/**
 * Everything Heimdall asks of an IPFS node. Implemented by the embedded Helia
 * node and by Kubo over its RPC API; one contract suite runs against each.
 * Reads never reach out to the network: content is served only if this node
 * has it, and unknown content is a NotFoundError.
 */
export interface IpfsBackend {
  readonly kind: 'helia' | 'kubo'
  /**
   * Imports the candidates wrapped in one directory (like `ipfs add -r -w`)
   * with the named profile. The last node is the root, with path `''`.
   * `pinName`, where the node has `importPins`: the root is pinned as it is
   * added, under that name. A failure marked by `importMadeNoPin` is one
   * the node cannot have pinned anything for (it never had the whole upload).
   */
  importTree: (candidates: AsyncIterable<ImportCandidate> | Iterable<ImportCandidate>, options: { profile: ImportProfileName, signal?: AbortSignal, lease?: ImportLease, pinName?: string }) => Promise<ImportedNode[]>
  /**
   * Present where the node pins a tree in the import itself (Kubo's add with
   * `--pin-name`, as `ipfs add` pins), which spares the pin a second walk of
   * the whole DAG: `named` lists the recursive pins whose names begin with
   * `prefix`, to settle the pins of imports a crash interrupted before their
   * roots were known.
   */
  importPins?: { named: (prefix: string, options?: { signal?: AbortSignal }) => AsyncIterable<{ name: string, cid: CID }> }
  /**
   * Writes blocks as they come (a CAR being received), under `lease` so that
   * a drop removes them and no collection takes them before the pin. The
   * caller has verified each block against its CID; nothing is pinned.
   */
  putBlocks: (blocks: AsyncIterable<VerifiedBlock> | Iterable<VerifiedBlock>, options: { lease: ImportLease, signal?: AbortSignal }) => Promise<void>
  /** A lease to pass to `importTree`; hold it until the root is pinned or the upload dropped. */
  openLease: () => Promise<ImportLease>
  /** Removes every block no pin reaches and no lease holds. Never runs twice at once. */
  gc: (options?: { dryRun?: boolean }) => Promise<GcReport>
  /**
   * Recursively pins. Pinning something already pinned is not an error.
   * `imported`: the lease under which `cid`'s whole DAG was just imported
   * (importTree's, or putBlocks' once the caller checked the tree complete),
   * still held; a backend may then take the lease's blocks for the DAG's
   * rather than walk it again. A lease the shared store expired meanwhile
   * is a ServiceUnavailableError (503): its blocks may be gone. Where that
   * import pinned `cid` itself (its `pinName`, see importPins), it is pinned
   * again only if that pin is gone meanwhile.
   */
  pin: (cid: CID, options?: { signal?: AbortSignal, imported?: ImportLease }) => Promise<void>
  /** Removes a recursive pin. Unpinning something not pinned is not an error. */
  unpin: (cid: CID) => Promise<void>
  isPinned: (cid: CID) => Promise<boolean>
  /** Every recursively pinned root; `signal` gives up on a node that does not answer. */
  listPins: (options?: { signal?: AbortSignal }) => AsyncIterable<CID>
  /** Resolves `path` (segments) below `cid`. Throws NotFoundError when absent; `signal` gives up (a client gone). */
  stat: (cid: CID, path?: readonly string[], options?: { signal?: AbortSignal }) => Promise<NodeStat>
  read: (cid: CID, path: readonly string[], options?: ReadOptions) => AsyncIterable<Uint8Array>
  list: (cid: CID, path?: readonly string[], options?: { signal?: AbortSignal }) => AsyncIterable<DirectoryEntry>
  /** One block's bytes, from this node only (identity CIDs included). Throws NotFoundError when not held. */
  getBlock: (cid: CID, options?: { signal?: AbortSignal }) => Promise<Uint8Array>
  /**
   * The node on the IPFS network; undefined when it is not (or, for Kubo,
   * when Heimdall does not drive its networking).
   */
  readonly network?: NodeNetwork
  /**
   * One block for an explicit fetch (a pin request): from this node when it
   * holds it, else from its peers (only when `network` is set), its bytes
   * checked against the CID; stored under `lease` either way, so that a
   * discard removes what the fetch brought. Waits until `signal` aborts.
   */
  fetchBlock?: (cid: CID, options: { lease: ImportLease, signal: AbortSignal }) => Promise<Uint8Array>
  /** Resolves when the node answers; throws otherwise. For readiness probes. */
  ping: () => Promise<void>
  close: () => Promise<void>
}

/** What a compaction of the S3 store's packs did (see S3BlockStorage.compact). */
export interface CompactReport {
  packs: number
  bytes: number
  /** Packs not rewritten: a block in them is shorter than indexed or does not hash to its CID. */
  damaged?: string[]
}
