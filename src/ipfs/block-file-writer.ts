import { access, mkdir, rename, writeFile } from 'node:fs'
import { join } from 'node:path'
import { promisify } from 'node:util'
import type { CID } from 'multiformats/cid'
import { SHARDING } from './block-collector.ts'

const accessFile = promisify(access)
const makeDir = promisify(mkdir)
const renameFile = promisify(rename)
const writeWhole = promisify(writeFile)

/**
 * Writes blocks as blockstore-fs lays them out (`<dir>/<shard>/<key>.data`,
 * see SHARDING), with fewer steps per block: a shard folder is created once
 * per process, not per block; no lock is taken (the collector's leases keep
 * sweeps away); callback fs, no FileHandle per block. A block is written to
 * `.<key>.tmp` and renamed, so a block file is never partial; a block being
 * written is written once, whoever else asks for it meanwhile, so that two
 * writers never share the temp file. A block already on disk is not written
 * again. Nothing is fsynced per block: like Kubo's flatfs (`sync: false` by
 * default), a block is durable against a crash of the process, which leaves
 * the page cache to the kernel, not against a power cut.
 */
export class BlockFileWriter {
  readonly #dir: string
  readonly #shards = new Set<string>()
  readonly #writing = new Map<string, Promise<void>>()

  constructor (dir: string) {
    this.#dir = dir
  }

  async put (cid: CID, bytes: Uint8Array): Promise<CID> {
    const { dir, file } = SHARDING.encode(cid)
    let write = this.#writing.get(file)
    if (write === undefined) {
      write = this.#write(dir, file, bytes).finally(() => { this.#writing.delete(file) })
      this.#writing.set(file, write)
    }
    await write
    return cid
  }

  async #write (shard: string, file: string, bytes: Uint8Array): Promise<void> {
    const folder = join(this.#dir, shard)
    const path = join(folder, file)
    if (!this.#shards.has(shard)) {
      await makeDir(folder, { recursive: true })
      this.#shards.add(shard)
    }
    if (await accessFile(path).then(() => true, () => false)) return
    const temp = join(folder, `.${file}.tmp`)
    await writeWhole(temp, bytes)
    await renameFile(temp, path)
  }
}
