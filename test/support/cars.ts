import { CarWriter } from '@ipld/car/writer'
import * as dagCbor from '@ipld/dag-cbor'
import * as dagJson from '@ipld/dag-json'
import * as dagPb from '@ipld/dag-pb'
import * as cborg from 'cborg'
import type { UnixFS } from 'ipfs-unixfs'
import { importer } from 'ipfs-unixfs-importer'
import { fixedSize } from 'ipfs-unixfs-importer/chunker'
import { balanced } from 'ipfs-unixfs-importer/layout'
import { CID } from 'multiformats/cid'
import { sha256 } from 'multiformats/hashes/sha2'
import { IMPORT_PROFILES, type ImportProfileName } from '../../src/ipfs/import-profiles.ts'

export interface Block { cid: CID, bytes: Uint8Array }

/**
 * The blocks the real UnixFS importer writes for `files`, with our profile's
 * settings (as HeliaBackend.importTree passes them), and the root it reports.
 */
export async function unixfsBlocks (files: ReadonlyArray<{ path: string, data?: Buffer | string }>, options: { wrap: boolean, profile?: ImportProfileName, shardSplitThresholdBytes?: number }): Promise<{ root: CID, blocks: Block[] }> {
  const profile = IMPORT_PROFILES[options.profile ?? 'unixfs-v1-2025']
  const blocks: Block[] = []
  const seen = new Set<string>()
  const blockstore = {
    put: async (cid: CID, bytes: Uint8Array): Promise<CID> => {
      if (!seen.has(cid.toString())) { seen.add(cid.toString()); blocks.push({ cid, bytes }) }
      return Promise.resolve(cid)
    }
  }
  let root: CID | undefined
  const candidates = files.map((f) => f.data === undefined ? { path: f.path } : { path: f.path, content: [typeof f.data === 'string' ? Buffer.from(f.data) : f.data] })
  for await (const entry of importer(candidates, blockstore, {
    cidVersion: profile.cidVersion,
    rawLeaves: profile.rawLeaves,
    chunker: fixedSize({ chunkSize: profile.chunkSize }),
    layout: balanced({ maxChildrenPerNode: profile.maxChildrenPerNode }),
    wrapWithDirectory: options.wrap,
    // A folder past it is a HAMT (the importer's default, Kubo's, is 256 KiB): a small one shards a few hundred names.
    ...(options.shardSplitThresholdBytes === undefined ? {} : { shardSplitThresholdBytes: options.shardSplitThresholdBytes })
  })) root = entry.cid
  if (root === undefined) throw new Error('the importer produced nothing')
  return { root, blocks }
}

/** A CARv1 written by @ipld/car's writer: `roots`, then `blocks` in the order given. */
export async function writeCar (roots: CID[], blocks: readonly Block[]): Promise<Buffer> {
  const { writer, out } = CarWriter.create(roots)
  const chunks: Uint8Array[] = []
  const reading = (async () => { for await (const chunk of out) chunks.push(chunk) })()
  for (const block of blocks) await writer.put(block)
  await writer.close()
  await reading
  return Buffer.concat(chunks)
}

/**
 * A CARv2 around `v1` (ipld.io/specs/transport/car/carv2): the pragma, the
 * 40-byte header (no characteristics), `padding` zero bytes, the CARv1, then
 * `trailer` (where an index goes). `offset` and `size` override what the
 * header says of the payload.
 */
export function carV2 (v1: Uint8Array, options: { padding?: number, trailer?: Uint8Array, offset?: number, size?: number } = {}): Buffer {
  const pragma = Buffer.from([0x0a, 0xa1, 0x67, 0x76, 0x65, 0x72, 0x73, 0x69, 0x6f, 0x6e, 0x02])
  const padding = options.padding ?? 0
  const header = Buffer.alloc(40)
  header.writeBigUInt64LE(BigInt(options.offset ?? pragma.length + header.length + padding), 16)
  header.writeBigUInt64LE(BigInt(options.size ?? v1.byteLength), 24)
  header.writeBigUInt64LE(options.trailer === undefined ? 0n : BigInt(pragma.length + header.length + padding + v1.byteLength), 32)
  return Buffer.concat([pragma, header, Buffer.alloc(padding), v1, options.trailer ?? new Uint8Array(0)])
}

/** A dag-cbor block, for a root that is not UnixFS. */
export async function dagCborBlock (value: unknown): Promise<Block> {
  const bytes = dagCbor.encode(value)
  return { cid: CID.createV1(dagCbor.code, await sha256.digest(bytes)), bytes }
}

/** A dag-json block, as @ipld/dag-json writes `value`. */
export async function dagJsonBlock (value: unknown): Promise<Block> {
  const bytes = dagJson.encode(value)
  return { cid: CID.createV1(dagJson.code, await sha256.digest(bytes)), bytes }
}

/** A dag-pb block of UnixFS `data` and `links`, made by hand: for DAGs no importer writes (repeated links, odd shards). */
export async function unixfsNode (data: UnixFS, links: dagPb.PBLink[]): Promise<Block> {
  const bytes = dagPb.encode(dagPb.prepare({ Data: data.marshal(), Links: links }))
  return { cid: CID.createV1(dagPb.code, await sha256.digest(bytes)), bytes }
}

/** A raw block (CIDv1, raw codec) of `bytes`. */
export async function rawBlock (bytes: Uint8Array): Promise<Block> {
  return { cid: CID.createV1(0x55, await sha256.digest(bytes)), bytes }
}

/**
 * A dag-cbor root whose links a walk must take in the order the bytes hold
 * them, as Kubo does (checked against Kubo v0.42 in kubo-parity.test.ts):
 * integer-like keys and keys of two lengths in canonical dag-cbor ("9", "b",
 * "10", "aa"), a nested map and a list, and links to a dag-cbor block and a
 * dag-json block whose keys are written out of canonical order (valid, and
 * walked as written). `blocks` has the root first; `dfsOrder` is the order
 * of a depth-first CAR of the root.
 */
export async function encodedOrderDag (): Promise<{ root: Block, blocks: Block[], dfsOrder: Block[] }> {
  const leaves = async (prefix: string): Promise<[Block, Block, Block, Block]> => Promise.all(['1', '2', '3', '4'].map(async (n) => rawBlock(Buffer.from(`${prefix}${n}`)))) as Promise<[Block, Block, Block, Block]>
  const [l1, l2, l3, l4] = await leaves('root leaf ')
  const [o1, o2, o3, o4] = await leaves('odd leaf ')
  const [j1, j2, j3, j4] = await leaves('json leaf ')
  const oddBytes = cborg.encode(new Map<string, CID>([['aa', o1.cid], ['b', o2.cid], ['10', o3.cid], ['9', o4.cid]]), { ...dagCbor.encodeOptions, mapSorter: () => 0 })
  const odd = { cid: CID.createV1(dagCbor.code, await sha256.digest(oddBytes)), bytes: oddBytes }
  const jsonBytes = Buffer.from(`{"b":{"/":"${j1.cid.toString()}"},"aa":{"/":"${j2.cid.toString()}"},"10":{"/":"${j3.cid.toString()}"},"9":{"/":"${j4.cid.toString()}"}}`)
  const json = { cid: CID.createV1(dagJson.code, await sha256.digest(jsonBytes)), bytes: jsonBytes }
  const root = await dagCborBlock({ b: l1.cid, aa: { z: l2.cid, y: [l3.cid, l4.cid] }, 10: json.cid, 9: odd.cid })
  return {
    root,
    blocks: [root, odd, json, l1, l2, l3, l4, o1, o2, o3, o4, j1, j2, j3, j4],
    dfsOrder: [root, odd, o1, o2, o3, o4, l1, json, j1, j2, j3, j4, l3, l4, l2]
  }
}
