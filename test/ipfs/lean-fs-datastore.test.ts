import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterEach, beforeEach, describe, expect, it } from 'vitest'
import { FsDatastore } from 'datastore-fs'
import { Key } from 'interface-datastore'
import { LeanFsDatastore } from '../../src/ipfs/lean-fs-datastore.ts'

/** Every file under `dir`, relative, sorted. */
async function files (dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true, withFileTypes: true })).filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort()
}

describe('LeanFsDatastore', () => {
  let dir: string
  beforeEach(async () => { dir = await mkdtemp(join(tmpdir(), 'lean-ds-')) })
  afterEach(async () => { await rm(dir, { recursive: true, force: true }) })

  it('writes the files datastore-fs writes, at its paths, and each reads what the other wrote', async () => {
    const lean = new LeanFsDatastore(join(dir, 'lean'))
    const plain = new FsDatastore(join(dir, 'plain'))
    for (const store of [lean, plain]) {
      await store.open()
      await store.put(new Key('/pin/bafyone'), Uint8Array.from([1, 2, 3]))
      await store.put(new Key('/pin/bafytwo'), Uint8Array.from([4]))
      await store.put(new Key('/other/deeper/key'), Uint8Array.from([5]))
    }
    expect(await files(join(dir, 'lean'))).toEqual(await files(join(dir, 'plain')))
    expect(await files(join(dir, 'lean'))).toEqual(['other/deeper/key.data', 'pin/bafyone.data', 'pin/bafytwo.data'])

    const crossed = new FsDatastore(join(dir, 'lean'))
    expect(await crossed.get(new Key('/pin/bafyone'))).toEqual(Buffer.from([1, 2, 3]))
    const keys: string[] = []
    for await (const key of lean.queryKeys({ prefix: '/pin/' })) keys.push(key.toString())
    expect(keys.sort()).toEqual(['/pin/bafyone', '/pin/bafytwo'])
    expect(await lean.has(new Key('/pin/bafytwo'))).toBe(true)
  })

  it('replaces a record whole; puts of one key at once leave one of the values and no temporary file', async () => {
    const store = new LeanFsDatastore(dir)
    await store.put(new Key('/pin/a'), Uint8Array.from([1]))
    await store.put(new Key('/pin/a'), Uint8Array.from([2, 2]))
    expect(await store.get(new Key('/pin/a'))).toEqual(Buffer.from([2, 2]))
    const values = Array.from({ length: 20 }, (_, i) => new Uint8Array(10_000).fill(i))
    await Promise.all(values.map(async (value) => store.put(new Key('/pin/b'), value)))
    // In the order they were asked for: the last one stays.
    expect(await store.get(new Key('/pin/b'))).toEqual(Buffer.from(values.at(-1) as Uint8Array))
    expect(await files(dir)).toEqual(['pin/a.data', 'pin/b.data'])
  })

  it('makes a key\'s folder again when it went after the first put, for every put that finds it gone', async () => {
    const store = new LeanFsDatastore(dir)
    await store.put(new Key('/pin/a'), Uint8Array.from([1]))
    await rm(join(dir, 'pin'), { recursive: true })
    await store.put(new Key('/pin/b'), Uint8Array.from([2]))
    expect(await readFile(join(dir, 'pin', 'b.data'))).toEqual(Buffer.from([2]))
    await rm(join(dir, 'pin'), { recursive: true })
    await Promise.all([store.put(new Key('/pin/c'), Uint8Array.from([3])), store.put(new Key('/pin/d'), Uint8Array.from([4]))])
    expect(await files(dir)).toEqual(['pin/c.data', 'pin/d.data'])
  })

  it('a temporary file a crash left is replaced by the key\'s next put, as steno\'s was', async () => {
    const store = new LeanFsDatastore(dir)
    await store.put(new Key('/pin/a'), Uint8Array.from([1]))
    await writeFile(join(dir, 'pin', '.b.data.tmp'), 'half')
    await store.put(new Key('/pin/b'), Uint8Array.from([2]))
    expect(await files(dir)).toEqual(['pin/a.data', 'pin/b.data'])
  })

  it('a put that fails leaves no temporary file, and says why', async () => {
    const store = new LeanFsDatastore(dir)
    await store.put(new Key('/pin/a'), Uint8Array.from([1]))
    // The key's file cannot be replaced: a folder stands at its path.
    await rm(join(dir, 'pin', 'a.data'))
    await mkdir(join(dir, 'pin', 'a.data', 'inside'), { recursive: true })
    await expect(store.put(new Key('/pin/a'), Uint8Array.from([3]))).rejects.toThrow(/EISDIR|ENOTEMPTY|EEXIST/)
    expect((await readdir(join(dir, 'pin'))).filter((name) => name.endsWith('.tmp'))).toEqual([])
  })
})
